'use strict';

/*
 * Lambda@Edge, viewer-request: send visitors of example.com to www.example.com.
 * The Node.js twin of handlers/www_redirect.py, written like the Developer Guide's
 * "Example: Generating an HTTP redirect (generated response)":
 * https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html
 *
 * A response returned from viewer-request goes straight to the viewer: it is never cached
 * and no viewer-response function runs for it.
 */
exports.handler = (event, context, callback) => {
    const request = event.Records[0].cf.request;
    const host = request.headers.host[0].value;
    if (host.toLowerCase().startsWith('www.')) {
        callback(null, request);
        return;
    }

    let location = `https://www.${host}${request.uri}`;
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
