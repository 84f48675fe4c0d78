// Equivalent of CloudFront's documented example "kvs-key-value-pairs" (viewer-request,
// runtime 2.0), written for edgeproxy's tests: the first path segment is looked up in the
// store named by its ID and replaced by its value; a missing key leaves the URI alone.
import cf from 'cloudfront';

const kvsId = 'a1b2c3d4-5678-90ab-cdef-EXAMPLE11111';
const kvsHandle = cf.kvs(kvsId);

async function handler(event) {
    const request = event.request;
    const segments = request.uri.split('/');
    try {
        segments[1] = await kvsHandle.get(segments[1]);
        const uri = segments.join('/');
        console.log(`${request.uri} -> ${uri}`);
        request.uri = uri;
    } catch (err) {
        console.log(`${request.uri} | ${err}`);
    }
    return request;
}
