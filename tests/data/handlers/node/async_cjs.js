// CommonJS, async handler: marks the request, or answers /generated.
const helper = require('./helper');

exports.handler = async (event) => {
    const request = event.Records[0].cf.request;
    if (request.uri === '/generated') {
        return { status: '200', body: helper.greeting('async') };
    }
    request.headers['x-node-style'] = [{ key: 'X-Node-Style', value: 'async' }];
    return request;
};
