// Lambda@Edge no-op function for the benchmark, Node.js: the twin of
// bench/handlers/python/noop/index.py. One handler for viewer-request and viewer-response:
// the response when the event has one, else the request, untouched.
export const handler = async (event) => {
    const cf = event.Records[0].cf;
    return cf.response !== undefined ? cf.response : cf.request;
};
