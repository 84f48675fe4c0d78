"""No index.py here: handler index.handler, code: no_index is refused."""


def handler(event, context):
    return event["Records"][0]["cf"]["request"]
