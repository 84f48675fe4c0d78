# origin-request: tells the origin which URI it saw (after any viewer-request rewrite).
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-origin-request-saw"] = [
        {"key": "X-Origin-Request-Saw", "value": request["uri"]}
    ]
    return request
