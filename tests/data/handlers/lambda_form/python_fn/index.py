"""A Python function named as Lambda names it: handler index.handler, code: python_fn."""

import os

import helper  # a sibling module of the function's folder (LAMBDA_TASK_ROOT)


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    seen = {
        "x-helper": helper.NAME,
        "x-handler": os.environ["_HANDLER"],
        "x-task-root": os.environ["LAMBDA_TASK_ROOT"],
        "x-cwd": os.getcwd(),
        "x-function-name": context.function_name,
    }
    for name, value in seen.items():
        request["headers"][name] = [{"key": name, "value": value}]
    return request
