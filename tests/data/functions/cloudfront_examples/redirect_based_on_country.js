// Equivalent of CloudFront's documented example "redirect-based-on-country"
// (viewer-request), written for edgeproxy's tests: viewers in DE get a 302 to /de/index.html.
function handler(event) {
    var request = event.request;
    var country = request.headers['cloudfront-viewer-country'];
    if (country && country.value === 'DE') {
        return {
            statusCode: 302,
            statusDescription: 'Found',
            headers: { location: { value: 'https://' + request.headers.host.value + '/de/index.html' } },
        };
    }
    return request;
}
