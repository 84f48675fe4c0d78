"""handler src/app.handler, code: nested: the module path holds a folder."""

import os


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    for name, value in {"x-app": "nested", "x-cwd": os.getcwd()}.items():
        request["headers"][name] = [{"key": name, "value": value}]
    return request
