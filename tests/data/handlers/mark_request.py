# Marks the request at viewer-request with the uri the handler was given, so a test sees at
# the origin that this behavior's handler ran, and on which spelling of the path.
def viewer_request(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-viewer-request"] = [{"key": "X-Viewer-Request", "value": request["uri"]}]
    return request
