// The 2.0 origin helpers, driven by the viewer's headers so one function serves every test:
// x-select: an origin ID; x-update: updateRequestOrigin's parameters as JSON; x-group: two
// origin IDs "a,b" made an origin group that fails over on 500 and 503.
import cf from 'cloudfront';

function handler(event) {
    const headers = event.request.headers;
    if (headers['x-select']) {
        cf.selectRequestOriginById(headers['x-select'].value);
    }
    if (headers['x-update']) {
        cf.updateRequestOrigin(JSON.parse(headers['x-update'].value));
    }
    if (headers['x-group']) {
        cf.createRequestOriginGroup({
            originIds: headers['x-group'].value.split(','),
            failoverCriteria: { statusCodes: [500, 503] },
        });
    }
    return event.request;
}
