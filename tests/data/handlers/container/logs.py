"""Logs as Lambda's Python runtime shows them: print as it is, logging through Lambda's handler
on the root logger (level WARNING unless the function lowers it)."""

import logging

logger = logging.getLogger()


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    print(f"printed for {request['uri']}")
    logger.info("not shown: the root logger is at WARNING")
    logger.warning("warned about %s", request["uri"])
    return request
