// viewer-response: add a header and a cookie, and say which runtime ran.
function handler(event) {
    var response = event.response;
    response.headers['x-function'] = { value: 'viewer-response' };
    response.headers['x-seen-status'] = { value: String(response.statusCode) };
    response.cookies['seen'] = { value: 'yes', attributes: 'Path=/' };
    return response;
}
