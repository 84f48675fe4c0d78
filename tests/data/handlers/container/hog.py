"""Allocates (and touches) far more than a viewer stage's 128 MB."""


def handler(event, context):
    hog = b"x" * (300 * 1024 * 1024)
    return {"status": 200, "body": str(len(hog))}
