// Logs a line and marks the request, so the exchange record shows both (test_admin_exchanges).
function handler(event) {
    var request = event.request;
    console.log("marking " + request.uri);
    request.headers["x-marked"] = { value: "yes" };
    return request;
}
