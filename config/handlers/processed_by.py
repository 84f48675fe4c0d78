"""Lambda@Edge, origin-response: mark every object that came through this edge.

Runs once per origin fetch; what it returns is what the edge caches, so hits carry the
header too without running the function again.

Note: CloudFront forbids adding headers that start with X-Edge- (or X-Amz-Cf-), so the
marker is X-Processed-By.
"""


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-processed-by"] = [{"key": "X-Processed-By", "value": "edgeproxy"}]
    return response
