"""Prints and logs a line naming its call's request ID, as a handler being debugged does: in
the functions' log each call's own lines come before its REPORT line."""

import logging


def handler(event, context):
    print(f"printed by {context.aws_request_id}")
    logging.getLogger().warning("warned by %s", context.aws_request_id)
    return event["Records"][0]["cf"]["request"]
