'use strict';

/*
 * Lambda@Edge, origin-request: redirect plain-HTTP viewers to HTTPS.
 * The Node.js twin of handlers/https_redirect.py, in the Developer Guide's callback style:
 * https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html
 *
 * CloudFront-Forwarded-Proto says which protocol the viewer used; the cache behavior must
 * forward it, which also puts it in the cache key, so the redirect is cached for HTTP
 * viewers only. (redirect-to-https as viewer protocol policy does this without a function.)
 */
exports.handler = (event, context, callback) => {
    const request = event.Records[0].cf.request;
    const headers = request.headers;
    const proto = headers['cloudfront-forwarded-proto']
        ? headers['cloudfront-forwarded-proto'][0].value
        : 'https';
    if (proto.toLowerCase() !== 'http') {
        callback(null, request);
        return;
    }

    let location = `https://${headers.host[0].value}${request.uri}`;
    if (request.querystring) {
        location += `?${request.querystring}`;
    }
    const response = {
        status: '301',
        statusDescription: 'Moved Permanently',
        headers: {
            location: [{ key: 'Location', value: location }],
            'cache-control': [{ key: 'Cache-Control', value: 'max-age=3600' }],
        },
    };
    callback(null, response);
};
