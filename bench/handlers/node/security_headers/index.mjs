// Lambda@Edge, viewer-response, Node.js: the twin of
// bench/handlers/python/security_headers/index.py (the same seven headers).
const SECURITY_HEADERS = {
    'Strict-Transport-Security': 'max-age=63072000; includeSubDomains; preload',
    'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        + "frame-ancestors 'none'; base-uri 'self'",
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'X-XSS-Protection': '1; mode=block',
    'Referrer-Policy': 'strict-origin-when-cross-origin',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=()',
};

export const handler = async (event) => {
    const response = event.Records[0].cf.response;
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
        response.headers[name.toLowerCase()] = [{ key: name, value: value }];
    }
    return response;
};
