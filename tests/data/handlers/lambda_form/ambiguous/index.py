"""With index.js beside it, handler index.handler needs a runtime to say which."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-language"] = [{"key": "X-Language", "value": "python"}]
    return request
