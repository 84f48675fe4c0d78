"""Shows what a Lambda container gives a function: its environment, working directory, a
file packaged beside it, and a sibling module imported at call time."""

import json
import os


def handler(event, context):
    with open("config.json") as packaged:  # relative to LAMBDA_TASK_ROOT, as on Lambda
        config = json.load(packaged)
    import helper  # a sibling, imported inside the handler

    body = {"environ": dict(os.environ), "cwd": os.getcwd(), "config": config,
            "helper": helper.VERSION}
    return {"status": 200, "body": json.dumps(body)}
