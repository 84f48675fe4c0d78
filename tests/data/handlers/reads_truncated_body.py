"""origin-request with include_body: tells the origin what it saw of the body (read-only)."""

import base64


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    body = request["body"]
    seen = base64.b64decode(body["data"])
    request["headers"]["x-seen-length"] = [{"key": "X-Seen-Length", "value": str(len(seen))}]
    request["headers"]["x-input-truncated"] = [
        {"key": "X-Input-Truncated", "value": str(body["inputTruncated"]).lower()}
    ]
    return request
