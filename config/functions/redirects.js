// A redirect map in the associated KeyValueStore: a hit answers 301, a miss goes on.
import cf from 'cloudfront';

const kvs = cf.kvs();

async function handler(event) {
    const request = event.request;
    try {
        const target = await kvs.get(request.uri);
        return {
            statusCode: 301,
            statusDescription: 'Moved Permanently',
            headers: { location: { value: target } },
        };
    } catch (err) {
        console.log(`${request.uri} | ${err}`);
        return request;
    }
}
