"""Reports what the context says, in request headers."""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-remaining-ms"] = [
        {"key": "X-Remaining-Ms", "value": str(context.get_remaining_time_in_millis())}
    ]
    request["headers"]["x-function-name"] = [
        {"key": "X-Function-Name", "value": context.function_name}
    ]
    request["headers"]["x-request-id"] = [{"key": "X-Request-Id", "value": context.aws_request_id}]
    return request
