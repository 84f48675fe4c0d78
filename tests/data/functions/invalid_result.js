// Returns a header name in capitals: CloudFront wants lower-case names.
function handler(event) {
    var request = event.request;
    request.headers['X-Upper'] = { value: 'no' };
    return request;
}
