"""Forgets to return: CloudFront answers 502 "The JSON output must be an object type"."""


def handler(event, context):
    event["Records"][0]["cf"]["request"]["uri"] = "/changed"
