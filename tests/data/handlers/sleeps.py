"""Sleeps for the seconds in the X-Sleep request header (default 0.5)."""

import asyncio
import time


def _seconds(event):
    headers = event["Records"][0]["cf"]["request"]["headers"]
    return float(headers.get("x-sleep", [{"value": "0.5"}])[0]["value"])


def handler(event, context):
    time.sleep(_seconds(event))
    return event["Records"][0]["cf"]["request"]


async def async_handler(event, context):
    await asyncio.sleep(_seconds(event))
    return event["Records"][0]["cf"]["request"]
