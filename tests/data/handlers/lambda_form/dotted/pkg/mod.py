"""handler pkg.mod.handler, code: dotted: a dotted Python module is pkg/mod.py."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-app"] = [{"key": "X-App", "value": "dotted"}]
    return request
