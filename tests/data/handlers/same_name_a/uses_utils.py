"""Imports its own folder's ``utils`` (as Lambda's task root on sys.path makes it)."""

import utils


def handler(event, context):
    return {"status": 200, "body": utils.WHO}
