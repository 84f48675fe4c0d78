"""A handler that prints and logs, as handlers being debugged do: `edgeproxy invoke` keeps its
stdout for the JSON result alone."""

import logging


def handler(event, context):
    print("debug: looking at", event["Records"][0]["cf"]["request"]["uri"])
    logging.getLogger().warning("a warning from the handler")
    return event["Records"][0]["cf"]["request"]
