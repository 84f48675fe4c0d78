'use strict';

/*
 * Lambda@Edge, viewer-response: add the usual security headers to every response.
 * The Node.js twin of handlers/security_headers.py, in the Developer Guide's callback style:
 * https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html
 *
 * Viewer-response runs on hits and misses alike and its changes are never cached.
 */
const SECURITY_HEADERS = {
    'Strict-Transport-Security': 'max-age=63072000; includeSubDomains; preload',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'same-origin',
};

exports.handler = (event, context, callback) => {
    const response = event.Records[0].cf.response;
    const headers = response.headers;
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
        // Map key: the lower-case name; each entry: { key: <wire name>, value: <value> }.
        headers[name.toLowerCase()] = [{ key: name, value: value }];
    }
    callback(null, response);
};
