"""``edgeproxy test-function FILE --event-object EVENT.json``: runs a CloudFront Function
once and prints what ``aws cloudfront test-function`` prints (DG test-function; API
TestResult: FunctionSummary, ComputeUtilization, FunctionExecutionLogs, FunctionErrorMessage,
FunctionOutput), so a local result can be diffed with AWS's. As in CloudFront's test, only
execution errors are reported: the result is not validated (DG test-function, note).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from edgeproxy.functions.cloudfront.runner import FunctionRuntime, Outcome
from edgeproxy.functions.cloudfront.stores import (
    RUNTIMES,
    CloudFrontFunction,
    load_function,
    open_stores,
)
from edgeproxy.stages import Stage

FUNCTION_STAGES = (Stage.VIEWER_REQUEST.value, Stage.VIEWER_RESPONSE.value)
ACCOUNT_ARN = "arn:aws:cloudfront::123456789012:function/"


def test_result(function: CloudFrontFunction, event: Any, outcome: Outcome) -> dict[str, Any]:
    """The ``TestResult`` of ``aws cloudfront test-function``."""
    output = ""
    if outcome.kind is None:
        part = "request" if _is_request(event, outcome.output) else "response"
        output = json.dumps({part: outcome.output}, separators=(",", ":"))
    return {
        "TestResult": {
            "FunctionSummary": {
                "Name": function.name,
                "Status": "UNASSOCIATED",
                "FunctionConfig": {"Comment": "", "Runtime": function.runtime},
                "FunctionMetadata": {"FunctionARN": function.arn, "Stage": "DEVELOPMENT"},
            },
            "ComputeUtilization": str(outcome.utilization),
            "FunctionExecutionLogs": outcome.logs,
            "FunctionErrorMessage": outcome.error or "",
            "FunctionOutput": output,
        }
    }


def _is_request(event: Any, output: Any) -> bool:
    stage = event.get("context", {}).get("eventType") if isinstance(event, dict) else None
    generated = isinstance(output, dict) and "statusCode" in output
    return stage == Stage.VIEWER_REQUEST.value and not generated


async def run_test(function: CloudFrontFunction, event: Any) -> dict[str, Any]:
    runtime = FunctionRuntime()
    try:
        outcome = await runtime.call(function, event)
    finally:
        await runtime.close()
    return test_result(function, event, outcome)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "test-function", help="run a CloudFront Function once, as aws cloudfront test-function"
    )
    parser.add_argument("file", type=Path, help="the function's .js file")
    parser.add_argument("--event-object", type=Path, required=True, help="the event JSON")
    parser.add_argument(
        "--stage",
        choices=FUNCTION_STAGES,
        help="the event type (default: the event's context.eventType)",
    )
    parser.add_argument("--runtime", choices=RUNTIMES, default="cloudfront-js-2.0")
    parser.add_argument(
        "--key-value-store",
        action="append",
        default=[],
        metavar="ARN=FILE",
        help="a KeyValueStore and its import file (repeatable; one: the function's own)",
    )
    parser.add_argument("--name", default=None, help="the function's name (default: file's)")
    parser.set_defaults(run=_test_function)


def _test_function(args: argparse.Namespace) -> int:
    try:
        event = json.loads(args.event_object.read_text())
        stores = open_stores(dict(_store(s) for s in args.key_value_store))
        name = args.name or args.file.stem
        function = load_function(ACCOUNT_ARN + name, args.file, args.runtime, stores, None)
    except (OSError, ValueError) as err:
        print(f"edgeproxy: {err}", file=sys.stderr)
        return 2
    if args.stage is not None and isinstance(event, dict):
        event.setdefault("context", {})["eventType"] = args.stage
    result = asyncio.run(run_test(function, event))
    print(json.dumps(result, indent=4))
    return 0 if not result["TestResult"]["FunctionErrorMessage"] else 1


def _store(text: str) -> tuple[str, Path]:
    arn, sep, file = text.partition("=")
    if not sep:
        raise ValueError(f"--key-value-store is ARN=FILE, not {text!r}")
    return arn, Path(file)
