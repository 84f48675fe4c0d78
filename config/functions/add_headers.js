// viewer-response: adds a header to every answer of the behavior (CloudFront Functions).
function handler(event) {
    var response = event.response;
    response.headers['x-powered-by-function'] = { value: 'add_headers' };
    return response;
}
