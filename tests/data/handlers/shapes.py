"""Handlers whose results must survive the trip through the edge unchanged."""

import base64
import json

PIXEL = b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary"


def two_cookies(event, context):
    """origin-response: two Set-Cookie entries under one key."""
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["set-cookie"] = [
        {"key": "Set-Cookie", "value": "session=abc; Path=/; HttpOnly"},
        {"key": "Set-Cookie", "value": "theme=dark; Path=/"},
    ]
    return response


def binary(event, context):
    """viewer-request: a generated binary response, base64 in the result."""
    return {
        "status": "200",
        "headers": {"content-type": [{"key": "Content-Type", "value": "image/png"}]},
        "bodyEncoding": "base64",
        "body": base64.b64encode(PIXEL).decode(),
    }


def echo(event, context):
    """A request stage: answers with the event's config and request as JSON."""
    cf = event["Records"][0]["cf"]
    return {
        "status": 200,
        "headers": {"content-type": [{"key": "Content-Type", "value": "application/json"}]},
        "body": json.dumps({"config": cf["config"], "request": cf["request"]}),
    }
