"""An async handler: awaited on the event loop."""

import asyncio


async def handler(event, context):
    await asyncio.sleep(0)
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-async"] = [{"key": "X-Async", "value": "yes"}]
    return request


async def response_handler(event, context):
    await asyncio.sleep(0)
    response = event["Records"][0]["cf"]["response"]
    response["headers"]["x-async"] = [{"key": "X-Async", "value": "yes"}]
    return response
