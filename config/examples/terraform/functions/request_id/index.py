"""Lambda@Edge viewer-request: tags each API request with an id the origin can log."""

import uuid


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-request-id"] = [{"key": "X-Request-Id", "value": str(uuid.uuid4())}]
    return request
