"""Lambda@Edge, origin-request: redirect plain-HTTP viewers to HTTPS.

CloudFront-Forwarded-Proto says which protocol the viewer used ("http" or "https"); the
cache behavior must forward it, which also puts it in the cache key, so the redirect is
cached for HTTP viewers only and HTTPS viewers get the object.

The Location uses the request's Host header. At origin-request that is the viewer's Host
only when the behavior forwards Host; otherwise CloudFront has already set it to the
origin's domain name. (A viewer protocol policy of redirect-to-https does the same job
without a function; this is the function version.)
"""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    headers = request["headers"]
    proto = headers.get("cloudfront-forwarded-proto", [{"value": "https"}])[0]["value"]
    if proto.lower() != "http":
        return request

    location = "https://" + headers["host"][0]["value"] + request["uri"]
    if request["querystring"]:
        location += "?" + request["querystring"]
    return {
        "status": "301",
        "statusDescription": "Moved Permanently",
        "headers": {
            "location": [{"key": "Location", "value": location}],
            "cache-control": [{"key": "Cache-Control", "value": "max-age=3600"}],
        },
    }
