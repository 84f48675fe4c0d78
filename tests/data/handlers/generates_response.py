"""Generated responses, written like AWS's Python samples (status as an int)."""

import base64


def redirect(event, context):
    return {
        "status": 302,
        "statusDescription": "Found",
        "headers": {"location": [{"key": "Location", "value": "https://example.com/new"}]},
    }


def html(event, context):
    return {
        "status": "200",
        "headers": {"content-type": [{"value": "text/html; charset=utf-8"}]},
        "body": "<h1>héllo</h1>",
    }


def binary(event, context):
    return {
        "status": 200,
        "headers": {"content-type": [{"key": "Content-Type", "value": "image/gif"}]},
        "bodyEncoding": "base64",
        "body": base64.b64encode(b"GIF89a\x01\x00").decode(),
    }


def no_content_with_body(event, context):
    return {"status": 204, "body": "not allowed"}
