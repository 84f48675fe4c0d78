// CloudFront Function (cloudfront-js-2.0) no-op for the benchmark, associated with
// viewer-request and viewer-response: the response when the event has one, else the request.
function handler(event) {
    return event.response ? event.response : event.request;
}
