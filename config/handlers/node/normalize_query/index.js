'use strict';

/*
 * Lambda@Edge, viewer-request: normalise the query string to improve the cache hit ratio.
 * The Developer Guide's "Example: Normalizing query string parameters to improve the cache
 * hit ratio", as it is written there:
 * https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html
 *
 * Parameter names and values are lower-cased and the names put in alphabetical order, so
 * ?B=2&a=1 and ?a=1&b=2 are one cache key. Its Python twin: handlers/normalize_query.py.
 */
const querystring = require('querystring');

exports.handler = (event, context, callback) => {
    const request = event.Records[0].cf.request;

    console.log('Query String: ', request.querystring);

    /* Parse request query string to get javascript object */
    const params = querystring.parse(request.querystring.toLowerCase());
    const sortedParams = {};

    /* Sort param keys */
    Object.keys(params).sort().forEach(key => {
        sortedParams[key] = params[key];
    });

    /* Update request querystring with normalized  */
    request.querystring = querystring.stringify(sortedParams);

    callback(null, request);
};
