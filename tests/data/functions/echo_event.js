// viewer-request: passes the event on to the origin in headers, and marks the request.
function handler(event) {
    var request = event.request;
    request.headers['x-event-type'] = { value: event.context.eventType };
    request.headers['x-viewer-ip'] = { value: event.viewer.ip };
    request.headers['x-cookie-a'] = { value: request.cookies.a ? request.cookies.a.value : '-' };
    request.headers['x-query-q'] = { value: request.querystring.q ? request.querystring.q.value : '-' };
    request.headers['x-accept-count'] = {
        value: String(request.headers.accept && request.headers.accept.multiValue
            ? request.headers.accept.multiValue.length : 1)
    };
    request.querystring.added = { value: '1' };
    return request;
}
