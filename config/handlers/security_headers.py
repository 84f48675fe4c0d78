"""Lambda@Edge, viewer-response: add the usual security headers to every response.

The same headers as AWS's "add security headers" sample. Viewer-response runs on hits and
misses alike and its changes are never cached, so a change here takes effect at once.
"""

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    for name, value in SECURITY_HEADERS.items():
        # Map key: the lower-case name; each entry: {"key": <wire name>, "value": <value>}.
        headers[name.lower()] = [{"key": name, "value": value}]
    return response
