"""Adds Connection, which CloudFront never lets a function set (502)."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["connection"] = [{"key": "Connection", "value": "close"}]
    return request


def response_handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-amz-cf-pop"] = [{"key": "X-Amz-Cf-Pop", "value": "LOCAL"}]
    return response
