"""What a Lambda@Edge handler call costs the edge, per isolation mode, in microseconds.

    .venv/bin/python -m bench.handler_cost [--calls 3000] [--repeats 5] [--json FILE]

Each mode runs ``HookRunner.run_request`` for a viewer-request handler that returns its
request unchanged (the cheapest real handler): building the event, the call in its isolation,
validation and converting the result back — everything a stage adds to a request, nothing
else. The ``cloudfront function`` row runs a viewer-request CloudFront Function that returns
its request unchanged the same way (``run_viewer_request``, in the runtime process every
CloudFront Function of an edge shares). Calls are sequential on one uvloop loop, as one
viewer's requests would be; the table gives the median of ``--repeats`` runs of ``--calls``
calls each, after a warm-up (for ``process``, the worker is started in the warm-up: cold
starts are not in the figure), and the best run, which is what the code costs when nothing
else competes for the CPU. The ``none`` row is the same work without calling anything (event
built, the request itself validated and converted), to separate the stage's own cost from
the isolation's. Logging is at WARNING, as in ``make bench`` (a REPORT line at INFO adds its
own cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import uvloop

from edgeproxy.functions import events
from edgeproxy.functions.cloudfront.runner import run_viewer_request
from edgeproxy.functions.cloudfront.stores import load_function as load_cloudfront_function
from edgeproxy.functions.events import EventMeta
from edgeproxy.functions.hooks import Hook, HookRunner, load_function, source_of
from edgeproxy.functions.loader import INIT_TIMEOUT_S
from edgeproxy.functions.validation import validate_request_result
from edgeproxy.messages import EdgeRequest
from edgeproxy.stages import Stage

HANDLERS = """
def handler(event, context):
    return event["Records"][0]["cf"]["request"]


async def async_handler(event, context):
    return event["Records"][0]["cf"]["request"]
"""

META = EventMeta("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE")
RID = "ErBax5417C_eI5vdOk6h384wAGWb4VPsg1r-9O_qe2EoeGER8BwR-g=="

NODE_HANDLER = """
exports.handler = async (event) => event.Records[0].cf.request;
"""

# A viewer-request CloudFront Function that returns its request unchanged, run as the edge
# runs one: ``run_viewer_request`` in the edge's one CloudFront Functions runtime process.
CLOUDFRONT_FUNCTION = "function handler(event) { return event.request; }\n"
CLOUDFRONT_ARN = "arn:aws:cloudfront::123456789012:function/noop"

# mode → (file:function, isolation); process and node run as a config names a function file:
# in the function's own runtime processes (the container model).
MODES: dict[str, tuple[str, str]] = {
    "inline": ("noop.py:handler", "inline"),
    "async": ("noop.py:async_handler", "thread"),  # async handlers run on the loop anyway
    "thread": ("noop.py:handler", "thread"),
    "process": ("noop.py:handler", "process"),
    "node": ("noop.js:handler", "process"),
}


def sample_request() -> EdgeRequest:
    """A browser-like request: ten headers, a query string."""
    headers = [
        ("Host", "d111111abcdef8.cloudfront.net"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
        ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("Accept-Language", "en-GB,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Referer", "https://www.example.com/"),
        ("Cookie", "session=abc123; theme=dark"),
        ("Upgrade-Insecure-Requests", "1"),
        ("Sec-Fetch-Dest", "document"),
        ("Sec-Fetch-Mode", "navigate"),
    ]
    return EdgeRequest("GET", "/articles/42", "ref=home&page=2", headers, "203.0.113.178")


async def per_call_us(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - start) / calls * 1e6


Figures = dict[str, tuple[float, float]]  # mode → (median, best) µs per call


async def measure(folder: Path, calls: int, repeats: int) -> Figures:
    """µs per call for every mode and for the stage without a call. The modes take turns
    within each repeat, so a change in the machine's load touches them all alike."""
    (folder / "noop.py").write_text(HANDLERS)
    (folder / "noop.js").write_text(NODE_HANDLER)
    runner = HookRunner(reload=True)
    request = sample_request()
    calls_by_mode: dict[str, Callable[[], Awaitable[Any]]] = {"none": lambda: _no_call(request)}
    for mode, (spec, isolation) in MODES.items():
        source = source_of(spec, None, None, folder)
        handler = load_function(source, isolation, folder, {}, INIT_TIMEOUT_S)  # type: ignore[arg-type]
        hook = Hook(Stage.VIEWER_REQUEST, handler, 5.0, False, isolation)  # type: ignore[arg-type]
        calls_by_mode[mode] = partial(runner.run_request, hook, request, META, RID)
    (folder / "noop_cf.js").write_text(CLOUDFRONT_FUNCTION)
    function = load_cloudfront_function(
        CLOUDFRONT_ARN, folder / "noop_cf.js", "cloudfront-js-2.0", {}, None
    )
    calls_by_mode["cloudfront function"] = partial(
        run_viewer_request, runner.functions, function, request, META, RID
    )
    runs: dict[str, list[float]] = {mode: [] for mode in calls_by_mode}
    try:
        for call in calls_by_mode.values():  # warm-up (starts the process worker)
            await per_call_us(call, max(50, calls // 10))
        for _ in range(repeats):
            for mode, call in calls_by_mode.items():
                runs[mode].append(await per_call_us(call, calls))
    finally:
        await runner.close()
    return {mode: (statistics.median(r), min(r)) for mode, r in runs.items()}


async def _no_call(request: EdgeRequest) -> Any:
    """Everything run_request does around the call: event, validation, conversion."""
    stage = Stage.VIEWER_REQUEST
    event = events.request_event(stage, request, META, RID, False)
    result = event["Records"][0]["cf"]["request"]
    same = validate_request_result(stage, result, request, False)
    return events.request_stage_result(stage, result, request, False, same)


def table(results: Figures) -> str:
    base_median, base_best = results["none"]
    lines = [
        "| isolation | µs per call, median | best run | the isolation's share (best) |",
        "|---|---:|---:|---:|",
    ]
    for mode, (median, best) in results.items():
        extra = "–" if mode == "none" else f"{best - base_best:.1f}"
        lines.append(f"| {mode} | {median:.1f} | {best:.1f} | {extra} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            results = runner.run(measure(Path(folder), args.calls, args.repeats))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load}")
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
