// Equivalent of CloudFront's documented example "url-rewrite-single-page-apps"
// (viewer-request), written for edgeproxy's tests: a path without a file extension is the
// app's, served by /index.html.
function handler(event) {
    var request = event.request;
    var last = request.uri.split('/').pop();
    if (last.indexOf('.') === -1) {
        request.uri = '/index.html';
    }
    return request;
}
