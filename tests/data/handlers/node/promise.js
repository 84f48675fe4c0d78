// Not async, but returns a Promise: marks the request at origin-request (the viewer-request
// handler's mark stays).
exports.handler = (event) => new Promise((resolve) => {
    setTimeout(() => {
        const request = event.Records[0].cf.request;
        request.headers['x-node-promise'] = [{ key: 'X-Node-Promise', value: 'promise' }];
        resolve(request);
    }, 10);
});
