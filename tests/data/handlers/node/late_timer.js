// Calls back at once with the request, while a timer it started before still has to run and
// marks the same request object. Lambda sends the result when the event loop is empty
// (callbackWaitsForEmptyEventLoop, the default), so the mark is in what the origin gets; with
// the flag set to false (/at-once) the result is sent at the callback, without the mark.
exports.handler = (event, context, callback) => {
    const request = event.Records[0].cf.request;
    if (request.uri === '/at-once') context.callbackWaitsForEmptyEventLoop = false;
    setTimeout(() => {
        request.headers['x-late-timer'] = [{ key: 'X-Late-Timer', value: 'fired' }];
    }, 300);
    callback(null, request);
};
