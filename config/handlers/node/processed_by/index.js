'use strict';

/*
 * Lambda@Edge, origin-response: mark every object that came through this edge.
 * The Node.js twin of handlers/processed_by.py, written the way CloudFront's Developer
 * Guide writes its examples ("Example: Overriding a response header"):
 * https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-examples.html
 *
 * Runs once per origin fetch; what it returns is what the edge caches, so hits carry the
 * header too. CloudFront forbids adding X-Edge-* (and X-Amz-Cf-*) headers, hence the name.
 */
exports.handler = (event, context, callback) => {
    const response = event.Records[0].cf.response;
    response.headers['x-processed-by'] = [{ key: 'X-Processed-By', value: 'edgeproxy' }];
    callback(null, response);
};
