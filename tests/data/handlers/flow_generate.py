# Request-stage handlers that answer by themselves (generated responses).
def viewer_request(event, context):
    return {
        "status": "200",
        "statusDescription": "OK",
        "headers": {"content-type": [{"key": "Content-Type", "value": "text/plain"}]},
        "body": "generated at viewer-request",
    }


def origin_request(event, context):
    request = event["Records"][0]["cf"]["request"]
    return {
        "status": 200,  # an int, as AWS's Python samples write it
        "headers": {
            "content-type": [{"key": "Content-Type", "value": "text/plain"}],
            "cache-control": [{"key": "Cache-Control", "value": "max-age=60"}],
        },
        "body": "generated at origin-request for " + request["uri"],
    }
