'use strict';

/*
 * Lambda@Edge, origin-request: refuse viewers from some countries with a 403 page.
 * The Node.js twin of handlers/country_block.py, written like the Developer Guide's
 * "Example: Redirecting viewer requests to a country-specific URL":
 * https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html
 *
 * CloudFront adds CloudFront-Viewer-Country after viewer-request, and only when the cache
 * behavior forwards it, so this runs at origin-request; the 403 is cached per country.
 * DE is on the list for the demo:
 *     curl -H 'CloudFront-Viewer-Country: DE' http://localhost:8080/node/members/
 */
const BLOCKED_COUNTRIES = new Set(['DE', 'KP']);

const body = (country) => `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>403 Forbidden</title></head>
<body>
<h1>403 Forbidden</h1>
<p>This content is not available in your country (${country}).</p>
</body>
</html>
`;

exports.handler = (event, context, callback) => {
    const request = event.Records[0].cf.request;
    const entries = request.headers['cloudfront-viewer-country'];
    const country = entries ? entries[0].value.toUpperCase() : '';
    if (!BLOCKED_COUNTRIES.has(country)) {
        callback(null, request);
        return;
    }

    const response = {
        status: '403',
        statusDescription: 'Forbidden',
        headers: {
            'content-type': [{ key: 'Content-Type', value: 'text/html; charset=utf-8' }],
            'cache-control': [{ key: 'Cache-Control', value: 'max-age=300' }],
        },
        body: body(country),
    };
    callback(null, response);
};
