"""``edgeproxy invoke`` and ``edgeproxy events generate``: one handler, one event, no edge.

``invoke FILE.py:function --event-type STAGE`` builds the event a stage would get (from
``--uri``, ``--method``, ``--header`` … or a whole event file with ``--event``), calls the
handler exactly as the edge does (same isolation, timeout, REPORT line), checks the result
against every rule of ``validation.RULES`` and prints it as JSON. When the handler breaks a
rule, raises or runs out of time, it prints what the viewer would get (status, X-Cache) and
why (the rule and its detail, or the user's traceback in the log), and exits 1 — like
``sam local invoke`` with CloudFront's validation on top.

``events generate STAGE`` prints the event ``invoke`` would use, to save and edit.

Exit status: 0 the result is valid; 1 the handler failed; 2 bad arguments or event file (a
handler that cannot be loaded is reported by the CLI, also with 2).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeproxy.errors import ConfigError, HandlerError
from edgeproxy.functions.cloudfront.event import function_event
from edgeproxy.functions.events import (
    EventMeta,
    request_event,
    request_from_result,
    response_event,
    response_from_result,
)
from edgeproxy.functions.handler_strings import RUNTIMES
from edgeproxy.functions.hooks import Hook, HookRunner, load_function, source_of
from edgeproxy.functions.isolation import ISOLATIONS, Isolation
from edgeproxy.functions.loader import INIT_TIMEOUT_S
from edgeproxy.functions.validation import (
    RuleBroken,
    validate_request_result,
    validate_response_result,
)
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, OriginTarget
from edgeproxy.stages import (
    Stage,
    may_include_body,
    sees_origin,
    takes_request,
    timeout_for,
)

DISTRIBUTION = EventMeta("d111111abcdef8.cloudfront.net", "EDFDVBD6EXAMPLE")
REQUEST_ID = "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ=="
CLIENT_IP = "203.0.113.178"
VIA = "2.0 2afae0d44e2540f472c0635ab62c232b.cloudfront.net (CloudFront)"


class EventFileError(Exception):
    """The ``--event`` file is not a CloudFront event."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """Everything one call needs: the event and the edge values it stands for."""

    stage: Stage
    event: dict[str, Any]
    request: EdgeRequest
    response: EdgeResponse | None
    include_body: bool


# --- building events ---------------------------------------------------------------------------


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"a header is 'Name: value', not {text!r}")
    return name.strip(), value.strip()


def sample_request(stage: Stage, args: argparse.Namespace) -> EdgeRequest:
    """The request a stage would see for the arguments: the viewer's headers in viewer
    stages, what CloudFront sends the origin in origin stages (reference 2.7)."""
    origin_side = sees_origin(stage)
    given: Headers = list(args.header or [])
    names = {name.lower() for name, _ in given}
    if origin_side:
        base = [
            ("X-Forwarded-For", args.client_ip),
            ("User-Agent", "Amazon CloudFront"),
            ("Via", VIA),
            ("Host", args.origin_domain),
        ]
    else:
        base = [("Host", DISTRIBUTION.distribution_domain_name), ("User-Agent", "curl/8.5.0")]
        base.append(("Accept", "*/*"))
    headers = [h for h in base if h[0].lower() not in names] + given
    body = _body(args)
    if body and "content-length" not in names:
        headers.append(("Content-Length", str(len(body))))
    origin = OriginTarget(args.origin_domain, 443, "https") if origin_side else None
    return EdgeRequest(
        method=args.method,
        uri=args.uri,
        querystring=args.querystring,
        headers=headers,
        client_ip=args.client_ip,
        body=body,
        origin=origin,
    )


def _body(args: argparse.Namespace) -> bytes:
    if args.body_file is not None:
        return Path(args.body_file).read_bytes()
    return str(args.body or "").encode("utf-8")


def sample_response(args: argparse.Namespace) -> EdgeResponse:
    headers: Headers = list(args.response_header or [("Content-Type", "text/html")])
    return EdgeResponse(args.status, headers, b"", "")


def generated_invocation(stage: Stage, args: argparse.Namespace) -> Invocation:
    request = sample_request(stage, args)
    include = bool(args.include_body) and may_include_body(stage)
    if takes_request(stage):
        event = request_event(stage, request, DISTRIBUTION, REQUEST_ID, include)
        return Invocation(stage, event, request, None, include)
    response = sample_response(args)
    event = response_event(stage, request, response, DISTRIBUTION, REQUEST_ID)
    return Invocation(stage, event, request, response, False)


def file_invocation(stage: Stage, path: Path, include_body: bool) -> Invocation:
    """An event file (the whole ``{"Records": [...]}``) and the edge values it describes."""
    try:
        event = json.loads(path.read_text())
        cf = event["Records"][0]["cf"]
        said = cf.get("config", {}).get("eventType")
    except OSError as exc:
        raise EventFileError(f"cannot read {path}: {exc}") from exc
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        raise EventFileError(f"{path} is not a CloudFront event: {exc!r}") from exc
    if said is not None and said != stage.value:
        raise EventFileError(
            f"{path} is a {said} event (config.eventType) but --event-type is {stage.value}"
        )
    try:
        return _parsed(stage, event, cf, include_body or "body" in cf["request"])
    except OSError as exc:
        raise EventFileError(f"cannot read {path}: {exc}") from exc
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        raise EventFileError(f"{path} is not a CloudFront event: {exc!r}") from exc


def _parsed(stage: Stage, event: Any, cf: Any, include_body: bool) -> Invocation:
    cf_request = cf["request"]
    blank = EdgeRequest(cf_request["method"], "/", "", [], cf_request["clientIp"])
    # The event's request read as if a handler had returned it onto an empty request.
    request = request_from_result(stage, cf_request, blank, False)
    body = cf_request.get("body")
    if isinstance(body, dict) and body.get("data"):
        request.body = base64.b64decode(body["data"])
    response = None
    if not takes_request(stage):
        cf_response = cf["response"]
        blank_response = EdgeResponse(int(cf_response["status"]), [], b"", "")
        response = response_from_result(stage, cf_response, blank_response)
    return Invocation(stage, event, request, response, include_body)


# --- running -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Any = None
    error: HandlerError | None = None


async def run(hook: Hook, invocation: Invocation) -> Outcome:
    """Call the handler once and validate its result, as the edge would."""
    runner = HookRunner(reload=False)
    try:
        result = await runner.invoke(hook, invocation.event)
        if invocation.response is None:
            validate_request_result(
                hook.stage,
                result,
                invocation.request,
                invocation.include_body,
                handler=hook.handler.name,
            )
        else:
            validate_response_result(
                hook.stage, result, invocation.response, handler=hook.handler.name
            )
        return Outcome(result=result)
    except HandlerError as err:
        return Outcome(error=err)
    finally:
        await runner.close()


def describe(err: HandlerError) -> str:
    """What the viewer would get and why, for a terminal."""
    lines = [
        f"{err.stage} handler {err.handler} failed: the viewer gets {err.status} "
        f"with X-Cache: {err.x_cache}"
    ]
    if isinstance(err, RuleBroken):
        lines.append(f"  rule: {err.rule}")
    lines.append(f"  {err.detail}")
    return "\n".join(lines)


# --- the subcommands ---------------------------------------------------------------------------


def _stage(value: str) -> Stage:
    try:
        return Stage(value)
    except ValueError:
        choices = ", ".join(s.value for s in Stage)
        raise argparse.ArgumentTypeError(f"must be one of {choices}") from None


def _event_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--uri",
        "--path",
        dest="uri",
        default="/",
        help="the viewer's request path (default /); with --config it selects the behavior",
    )
    parser.add_argument("--method", default="GET")
    parser.add_argument("--querystring", default="", help="raw query string, without '?'")
    parser.add_argument(
        "--header", action="append", type=_header, metavar="'NAME: VALUE'", help="repeatable"
    )
    parser.add_argument("--client-ip", default=CLIENT_IP)
    parser.add_argument("--body", help="request body text (with --include-body)")
    parser.add_argument("--body-file", type=Path, help="request body from a file")
    parser.add_argument("--include-body", action="store_true", help="give the handler request.body")
    parser.add_argument(
        "--origin-domain", default="example.org", help="origin stages: the origin's domain"
    )
    parser.add_argument("--status", type=int, default=200, help="response stages: status")
    parser.add_argument(
        "--response-header",
        action="append",
        type=_header,
        metavar="'NAME: VALUE'",
        help="response stages: the response's headers (repeatable)",
    )


def register(sub: Any) -> None:
    """Add ``invoke`` and ``events`` to the CLI's subcommands."""
    invoke = sub.add_parser("invoke", help="run one handler against one event")
    invoke.add_argument(
        "handler",
        nargs="?",
        help="path/file.py:function, package.module:function, or Lambda's index.handler "
        "with --code; with --config, default: the function the path's behavior associates",
    )
    invoke.add_argument(
        "--code", metavar="DIR", help="the function's folder, for Lambda's form index.handler"
    )
    invoke.add_argument(
        "--runtime", choices=RUNTIMES, help="the function's runtime (default: by its file)"
    )
    invoke.add_argument("--event-type", type=_stage, required=True, metavar="STAGE")
    invoke.add_argument("--event", type=Path, help="a whole event JSON file instead")
    invoke.add_argument(
        "--timeout",
        type=float,
        help="seconds (default: the association's timeout with --config, else the stage's limit)",
    )
    invoke.add_argument("--isolation", choices=ISOLATIONS, default="thread")
    _event_args(invoke)
    invoke.set_defaults(run=invoke_alone)

    events = sub.add_parser("events", help="sample Lambda@Edge events")
    actions = events.add_subparsers(required=True, metavar="ACTION")
    generate = actions.add_parser("generate", help="print the event a stage would get")
    generate.add_argument("stage", type=_stage, metavar="STAGE")
    generate.add_argument(
        "--kind",
        choices=("lambda", "function"),
        default="lambda",
        help="a Lambda@Edge event, or a CloudFront Functions event (viewer stages)",
    )
    _event_args(generate)
    generate.set_defaults(run=_generate)


def _generate(args: argparse.Namespace) -> int:
    if args.kind == "function":
        if args.stage not in (Stage.VIEWER_REQUEST, Stage.VIEWER_RESPONSE):
            print("edgeproxy: CloudFront Functions run at viewer stages only", file=sys.stderr)
            return 2
        event = function_event(
            args.stage,
            DISTRIBUTION,
            REQUEST_ID,
            sample_request(args.stage, args),
            sample_response(args) if args.stage == Stage.VIEWER_RESPONSE else None,
        )
        print(json.dumps(event, indent=2))
        return 0
    print(json.dumps(generated_invocation(args.stage, args).event, indent=2))
    return 0


# Builds the hook and the invocation for a stage from the arguments, or raises
# EventFileError / ConfigError (the CLI's --config builds them as the edge would).
Prepare = Callable[[Stage, argparse.Namespace], tuple[Hook, Invocation]]


def invoke_alone(args: argparse.Namespace) -> int:
    """``edgeproxy invoke`` without a config: the named handler and a sample event."""
    return command(args, _prepared)


def command(args: argparse.Namespace, prepare: Prepare) -> int:
    """``edgeproxy invoke``: check the arguments, build the call with ``prepare``, run it,
    print the result (stdout: its JSON alone) or why it failed."""
    stage: Stage = args.event_type
    try:
        hook, invocation = prepare(stage, args)
    except EventFileError as err:
        print(f"edgeproxy: {err}", file=sys.stderr)
        return 2
    except ConfigError as err:
        for where, message in err.problems:
            print(f"edgeproxy: {where}: {message}", file=sys.stderr)
        return 2
    # What the handler prints goes to stderr (a runtime process's stdout is its pipe to the
    # edge already): stdout carries the result's JSON alone, for jq and scripts.
    with contextlib.redirect_stdout(sys.stderr):
        outcome = asyncio.run(run(hook, invocation))
    if outcome.error is not None:
        print(describe(outcome.error), file=sys.stderr)
        return 1
    print(json.dumps(outcome.result, indent=2))
    return 0


def has_body(args: argparse.Namespace) -> bool:
    return args.body is not None or args.body_file is not None


def _prepared(stage: Stage, args: argparse.Namespace) -> tuple[Hook, Invocation]:
    """The call from the arguments alone: an event file, or the sample event."""
    if args.handler is None:
        raise ConfigError([("handler", "name one (file.py:function), or give --config")])
    if has_body(args) and not args.include_body:
        raise ConfigError(
            [
                (
                    "--body/--body-file",
                    "need --include-body: without it the handler gets no request.body (the "
                    "association's include_body is false)",
                )
            ]
        )
    invocation = (
        file_invocation(stage, args.event, args.include_body)
        if args.event is not None
        else generated_invocation(stage, args)
    )
    return cli_hook(args, stage, invocation.include_body), invocation


def cli_hook(args: argparse.Namespace, stage: Stage, include_body: bool) -> Hook:
    """The named handler (``args.handler``) loaded as the edge loads it."""
    isolation: Isolation = args.isolation
    timeout = timeout_for(stage, args.timeout)
    source = source_of(args.handler, args.code, args.runtime, Path.cwd(), "--")
    # As the edge loads it; a Node.js file always in a Node.js runtime process of its own.
    handler = load_function(source, isolation, Path.cwd(), {}, INIT_TIMEOUT_S)
    return Hook(stage, handler, timeout, include_body, isolation)
