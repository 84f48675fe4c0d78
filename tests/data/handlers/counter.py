"""Counts its calls in a module global: a warm container keeps it."""

calls = 0


def handler(event, context):
    global calls
    calls += 1
    request = event["Records"][0]["cf"]["request"]
    request["headers"]["x-calls"] = [{"key": "X-Calls", "value": str(calls)}]
    return request
