// What a style's handler does, by the request's path, at whichever stage it runs:
// /throw fails, /invalid returns what is not an object, /hang never answers, and any other path
// marks what the stage may change (the request at request stages, the response at response
// stages) with a header naming the style and the stage.
exports.outcome = (event, style) => {
    const cf = event.Records[0].cf;
    const uri = cf.request.uri;
    if (uri === '/throw') return { error: new Error(`${style} handler failed on purpose`) };
    if (uri === '/invalid') return { result: 'not an object' };
    if (uri === '/hang') return { hang: true };
    const target = cf.response ?? cf.request;
    target.headers[`x-node-${style}`] = [{ key: `X-Node-${style}`, value: cf.config.eventType }];
    return { result: target };
};

// Work that never ends: node's event loop never empties, so the call times out.
exports.forever = () => setInterval(() => {}, 1000);
