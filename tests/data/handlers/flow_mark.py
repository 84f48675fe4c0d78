# Marks responses so a test can see which response stages ran.
def origin_response(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-origin-response"] = [{"key": "X-Origin-Response", "value": "ran"}]
    return response


def viewer_response(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-viewer-response"] = [{"key": "X-Viewer-Response", "value": "ran"}]
    return response


async def async_viewer_response(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-async"] = [{"key": "X-Async", "value": "yes"}]
    return response
