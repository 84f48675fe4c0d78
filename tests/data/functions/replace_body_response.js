// viewer-response: the origin's body replaced by the function's own (DG
// functions-event-structure: a viewer-response function may replace the body).
function handler(event) {
    var response = event.response;
    response.body = { encoding: 'text', data: 'replaced by the function' };
    return response;
}
