"""One of two handler files named index.py: each must get its own module."""

WHO = "b"


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-who"] = [{"key": "X-Who", "value": WHO}]
    return request
