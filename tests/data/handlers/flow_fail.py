# Handlers that fail the way production handlers do.
def raises(event, context):
    raise RuntimeError("boom from a user handler")


def returns_none(event, context):
    return None


def adds_disallowed_header(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["connection"] = [{"key": "Connection", "value": "close"}]
    return response
