// CloudFront Function (cloudfront-js-2.0), viewer-response: the twin of
// bench/handlers/python/security_headers/index.py (the same seven headers), in the
// CloudFront Functions event shape (one {value} per lower-case header name).
var SECURITY_HEADERS = {
    'strict-transport-security': 'max-age=63072000; includeSubDomains; preload',
    'content-security-policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        + "frame-ancestors 'none'; base-uri 'self'",
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'x-xss-protection': '1; mode=block',
    'referrer-policy': 'strict-origin-when-cross-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

function handler(event) {
    var headers = event.response.headers;
    for (var name in SECURITY_HEADERS) {
        headers[name] = { value: SECURITY_HEADERS[name] };
    }
    return event.response;
}
