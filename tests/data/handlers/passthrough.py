"""Returns what it was given: the request (request stages) or the response (response stages)."""

not_callable = 42


def handler(event, context):
    return event["Records"][0]["cf"]["request"]


def response_handler(event, context):
    return event["Records"][0]["cf"]["response"]


class Nested:
    @staticmethod
    def handler(event, context):
        return event["Records"][0]["cf"]["request"]
