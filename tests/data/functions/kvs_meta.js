import cf from 'cloudfront';

async function handler(event) {
    const request = event.request;
    const kvs = cf.kvs();
    request.headers['x-exists'] = { value: String(await kvs.exists('/old')) };
    const meta = await kvs.meta();
    request.headers['x-count'] = { value: String(meta.keyCount) };
    return request;
}
