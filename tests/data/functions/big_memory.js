// Holds far more than CloudFront's 2 MB while it runs.
function handler(event) {
    var kept = [];
    for (var i = 0; i < 300000; i++) { kept.push(i + 0.5); }
    event.request.headers['x-kept'] = { value: String(kept.length) };
    return event.request;
}
