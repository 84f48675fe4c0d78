"""Lambda@Edge, origin-request: refuse viewers from some countries with a 403 page.

CloudFront-Viewer-Country is added by CloudFront after viewer-request, and only when the
cache behavior forwards it (forwarded_values.headers or a cache/origin request policy), so
this function must run at origin-request. Because the header is part of the cache key, the
403 it returns is cached for that country only.

The list below is for the demo; DE is on it so that
    curl -H 'CloudFront-Viewer-Country: DE' http://localhost:8080/members/
shows the block.
"""

BLOCKED_COUNTRIES = {"DE", "KP"}

BODY = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>403 Forbidden</title></head>
<body>
<h1>403 Forbidden</h1>
<p>This content is not available in your country ({country}).</p>
</body>
</html>
"""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    entries = request["headers"].get("cloudfront-viewer-country")
    country = entries[0]["value"].upper() if entries else ""
    if country not in BLOCKED_COUNTRIES:
        return request

    return {
        "status": "403",
        "statusDescription": "Forbidden",
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "text/html; charset=utf-8"}],
            "cache-control": [{"key": "Cache-Control", "value": "max-age=300"}],
        },
        "body": BODY.format(country=country),
    }
