"""Lambda@Edge no-op handlers for the benchmark: what calling a handler costs by itself.

``viewer_request`` hands the request back untouched and ``viewer_response`` the response, so
the edge still builds each event, calls the function and validates the result.
"""


def viewer_request(event, context):
    return event["Records"][0]["cf"]["request"]


def viewer_response(event, context):
    return event["Records"][0]["cf"]["response"]
