// Holds a 300 MB Buffer, off V8's heap, at /hog (a viewer stage has 128 MB); passes the rest.
// Filled: the pages of an unwritten Buffer.alloc are the kernel's shared zero page, resident
// nowhere, so they are not used memory for Lambda either.
exports.handler = (event, context, callback) => {
    const request = event.Records[0].cf.request;
    if (request.uri !== '/hog') return callback(null, request);
    const hog = Buffer.alloc(300 * 1024 * 1024, 1);
    callback(null, { status: '200', body: String(hog.length) });
};
