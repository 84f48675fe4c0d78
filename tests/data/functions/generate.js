// viewer-request: answers by itself (a generated response).
function handler(event) {
    return {
        statusCode: 200,
        statusDescription: 'OK',
        headers: { 'content-type': { value: 'text/plain' } },
        body: 'generated at ' + event.request.uri,
    };
}
