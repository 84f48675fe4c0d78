// Holds 300 MB of strings on V8's heap at /hog (a viewer stage has 128 MB); passes the rest.
exports.handler = async (event) => {
    const request = event.Records[0].cf.request;
    if (request.uri !== '/hog') return request;
    const hog = [];
    for (let i = 0; i < 300 * 1024; i++) hog.push('x'.repeat(1024) + i);
    return { status: '200', body: String(hog.length) };
};
