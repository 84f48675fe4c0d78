"""Touches read-only headers: Host in viewer-request, Transfer-Encoding in origin-response."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["host"] = [{"key": "Host", "value": "elsewhere.example"}]
    return request


def delete_transfer_encoding(event, context):
    response = event["Records"][0]["cf"]["response"]
    response["headers"].pop("transfer-encoding", None)
    return response
