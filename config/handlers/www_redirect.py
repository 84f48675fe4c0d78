"""Lambda@Edge, viewer-request: send visitors of example.com to www.example.com.

A request whose Host does not start with "www." gets a 301 to
https://www.<host><uri>, keeping the query string. Requests for a www host go on unchanged.

A response returned from viewer-request goes straight to the viewer: it is never cached
and no viewer-response function runs for it.
"""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    host = request["headers"]["host"][0]["value"]
    if host.lower().startswith("www."):
        return request

    location = "https://www." + host + request["uri"]
    if request["querystring"]:
        location += "?" + request["querystring"]
    return {
        "status": "301",
        "statusDescription": "Moved Permanently",
        "headers": {
            "location": [{"key": "Location", "value": location}],
            "cache-control": [{"key": "Cache-Control", "value": "max-age=3600"}],
        },
    }
