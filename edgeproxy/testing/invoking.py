"""``invoke(handler, stage, request=…, config=…)``: one Lambda@Edge function called once,
for a unit test, as ``edgeproxy invoke`` calls it (``functions/invoke.py``: the same
event, runner, timeout and validation against CloudFront's rules).

With ``config``, the event is the one the edge would build for ``request.uri``: the cache
behavior that path selects, the distribution's names, and the ``CloudFront-*`` headers that
behavior forwards, derived from the viewer's address and User-Agent by the edge's own
functions; at the origin stages the request is what the origin would get. Without
``handler`` it calls the function the config associates with that behavior and stage; the
association's ``include_body`` and ``timeout`` apply either way. All of that is
``edge_invoke.py``'s, which ``edgeproxy invoke --config`` reads too.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproxy.edge_invoke import edge_call
from edgeproxy.errors import HandlerError
from edgeproxy.functions.handler_strings import is_lambda_form
from edgeproxy.functions.hooks import Hook
from edgeproxy.functions.invoke import (
    Invocation,
    Outcome,
    cli_hook,
    generated_invocation,
    register,
    run,
)
from edgeproxy.functions.loader import is_file_target, parse_spec
from edgeproxy.stages import Stage, takes_request
from edgeproxy.testing.edge import ConfigSource, loaded_config
from edgeproxy.testing.loop import LoopThread

HeaderInput = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Request:
    """The viewer's request. ``scheme``: the listener it came in on (CloudFront-Forwarded-
    Proto); ``client_ip``: its address (the CloudFront-Viewer-* geo headers)."""

    uri: str = "/"
    method: str = "GET"
    querystring: str = ""
    headers: HeaderInput = ()
    body: str = ""
    client_ip: str = "203.0.113.178"
    scheme: str = "https"


@dataclass(frozen=True, slots=True)
class OriginAnswer:
    """The response origin-response and viewer-response get."""

    status: int = 200
    headers: HeaderInput = field(default_factory=lambda: {"Content-Type": "text/html"})


@dataclass(frozen=True, slots=True)
class Invoked:
    """One call: the event the function got, what it returned (checked against
    CloudFront's rules), or the error the edge would turn into a 502/503."""

    stage: Stage
    event: dict[str, Any]
    result: Any
    error: HandlerError | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def raise_for_error(self) -> Invoked:
        if self.error is not None:
            raise AssertionError(f"{self.stage} function failed: {self.error.detail}")
        return self

    @property
    def generated(self) -> bool:
        """A request stage answered the viewer itself (its result has a ``status``)."""
        return (
            takes_request(self.stage)
            and isinstance(self.result, dict)
            and ("status" in self.result)
        )

    @property
    def status(self) -> int | None:
        """The status of a generated or returned response; None for a request."""
        if isinstance(self.result, dict) and "status" in self.result:
            return int(self.result["status"])
        return None

    def header(self, name: str) -> str | None:
        """The first value of ``name`` in what the function returned."""
        return _first_value(self.result, name)

    def event_header(self, name: str) -> str | None:
        """The first value of ``name`` in the request the function was given (a
        ``CloudFront-*`` header the edge derived, the Host the origin would get…)."""
        return _first_value(self.event["Records"][0]["cf"]["request"], name)

    @property
    def uri(self) -> str | None:
        return self.result.get("uri") if isinstance(self.result, dict) else None

    @property
    def querystring(self) -> str | None:
        return self.result.get("querystring") if isinstance(self.result, dict) else None


def _first_value(message: Any, name: str) -> str | None:
    if not isinstance(message, dict):
        return None
    entries = (message.get("headers") or {}).get(name.lower()) or []
    return str(entries[0]["value"]) if entries else None


def invoke(
    handler: str | Path | None,
    stage: str | Stage,
    request: Request | str | None = None,
    config: ConfigSource | None = None,
    *,
    response: OriginAnswer | None = None,
    base_dir: Path | None = None,
    isolation: str | None = None,
    timeout: float | None = None,
) -> Invoked:
    """Call ``handler`` (``"handlers/x.py:handler"``, relative to ``base_dir``, default the
    working directory; ``None`` with ``config``: the behavior's own function) at ``stage``
    once. ``request`` is a ``Request`` or just its path."""
    stage = Stage(stage)
    base = (base_dir or Path.cwd()).resolve()
    viewer = Request(uri=request) if isinstance(request, str) else request or Request()
    args = _arguments(stage, viewer, response or OriginAnswer(), base, handler, isolation, timeout)
    if config is None:
        if handler is None:
            raise ValueError("invoke() needs a handler, or a config whose behavior names one")
        invocation = generated_invocation(stage, args)
        hook = cli_hook(args, stage, invocation.include_body)
    else:  # as `edgeproxy invoke --config`: edge_invoke.py is the one place
        call = edge_call(loaded_config(config, base), stage, args, viewer.scheme)
        hook, invocation = call.hook, call.invocation
    outcome = _called(hook, invocation)
    return Invoked(stage, invocation.event, outcome.result, outcome.error)


def _called(hook: Hook, invocation: Invocation) -> Outcome:
    """``invoke.run`` on a loop of its own, so an async test may call ``invoke`` too."""
    loop = LoopThread()
    try:
        return loop.run(lambda: run(hook, invocation))
    finally:
        loop.close()


# --- the arguments of `edgeproxy invoke`, from a test's values ---------------------------------


def _arguments(
    stage: Stage,
    viewer: Request,
    answer: OriginAnswer,
    base: Path,
    handler: str | Path | None,
    isolation: str | None,
    timeout: float | None,
) -> argparse.Namespace:
    """``edgeproxy invoke``'s own parser, defaults and all, with the test's values set."""
    parser = argparse.ArgumentParser(add_help=False)
    register(parser.add_subparsers())
    args = parser.parse_args(["invoke", "-", "--event-type", stage.value])
    args.handler, args.code = _absolute(str(handler), base) if handler else (None, None)
    args.isolation = isolation or "process"  # the edge's default (edge.handlers.isolation)
    args.timeout = timeout
    args.uri, args.method, args.querystring = viewer.uri, viewer.method, viewer.querystring
    args.header = _pairs(viewer.headers)
    args.client_ip, args.body = viewer.client_ip, viewer.body
    args.include_body = bool(viewer.body)
    args.status, args.response_header = answer.status, _pairs(answer.headers)
    return args


def _absolute(spec: str, base: Path) -> tuple[str, str | None]:
    """A file spec relative to ``base`` made absolute (the CLI resolves against the working
    directory); Lambda's ``index.handler`` form is ``"dir/index.handler"``: its folder."""
    if is_lambda_form(Path(spec).name):
        folder, name = (base / spec).parent, Path(spec).name
        return name, str(folder)
    target, attr = parse_spec(spec)
    if is_file_target(target) and not Path(target).is_absolute():
        return f"{base / target}:{attr}", None
    return spec, None


def _pairs(headers: HeaderInput) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(str(k), str(v)) for k, v in items]
