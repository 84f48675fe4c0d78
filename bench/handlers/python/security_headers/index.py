"""Lambda@Edge, viewer-response: the security headers a production site adds to every answer.

A realistic function for the benchmark: the headers of AWS's "add security headers" example
plus a Content-Security-Policy and Permissions-Policy, set on hits and misses alike. Its
twins: bench/handlers/node/security_headers/index.mjs (Node.js) and
bench/handlers/cloudfront/security_headers.js (a CloudFront Function).
"""

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "X-XSS-Protection": "1; mode=block",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]
    for name, value in SECURITY_HEADERS.items():
        headers[name.lower()] = [{"key": name, "value": value}]
    return response
