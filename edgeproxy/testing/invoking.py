"""``invoke(handler, stage, request=…, config=…)``: one Lambda@Edge function called once,
for a unit test, as ``edgeproxy invoke`` calls it (``functions/invoke.py``: the same
event, runner, timeout and validation against CloudFront's rules).

With ``config``, the event is the one the edge would build for ``request.uri``: the cache
behavior that path selects, the distribution's names, and the ``CloudFront-*`` headers that
behavior forwards, derived from the viewer's address and User-Agent by the edge's own
functions (``viewer/cloudfront_headers.py``); at the origin stages the request is what the
origin would get (``origin/forwarding.py``). Without ``handler`` it calls the function the
config associates with that behavior and stage.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgeproxy.config.config_model import Config
from edgeproxy.errors import HandlerError
from edgeproxy.functions.events import EventMeta, request_event, response_event
from edgeproxy.functions.handler_strings import is_lambda_form
from edgeproxy.functions.hooks import Hook
from edgeproxy.functions.invoke import (
    REQUEST_ID,
    VIA,
    Invocation,
    Outcome,
    generated_invocation,
    register,
    run,
    sample_request,
    sample_response,
)
from edgeproxy.functions.invoke import _hook as cli_hook
from edgeproxy.functions.loader import is_file_target, parse_spec
from edgeproxy.messages import EdgeRequest, Headers
from edgeproxy.origin.forwarding import origin_request
from edgeproxy.routes import Route, Routes
from edgeproxy.stages import Stage, may_include_body, takes_request
from edgeproxy.testing.edge import ConfigSource, loaded_config
from edgeproxy.testing.loop import LoopThread
from edgeproxy.viewer.cloudfront_headers import (
    ViewerFacts,
    sent_cf_headers,
    split_viewer_cf_headers,
    toward_origin,
    viewer_cf_headers,
)
from edgeproxy.viewer.geo import GeoLocator

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
    else:
        loaded = loaded_config(config, base)
        route = Routes(loaded).select(viewer.uri)
        hook = _route_hook(route, stage) if handler is None else cli_hook(args, stage, False)
        invocation = _edge_invocation(loaded, route, stage, args, viewer, hook)
    outcome = _called(hook, invocation)
    return Invoked(stage, invocation.event, outcome.result, outcome.error)


def _called(hook: Hook, invocation: Invocation) -> Outcome:
    """``invoke.run`` on a loop of its own, so an async test may call ``invoke`` too."""
    loop = LoopThread()
    try:
        return loop.run(lambda: run(hook, invocation))
    finally:
        loop.close()


def _route_hook(route: Route, stage: Stage) -> Hook:
    hook = route.hooks.get(stage)
    if hook is not None:
        return hook
    if stage in route.functions:
        raise ValueError(
            f"{route.behavior.path_pattern or 'the default behavior'} runs a CloudFront "
            f"Function at {stage}: test it through the edge (run_edge) or "
            "`edgeproxy test-function`"
        )
    raise ValueError(f"no function at {stage} for {route.behavior.path_pattern or '*'}")


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
    spec, code = _absolute(str(handler or "-"), base)
    args.handler, args.code = spec, code
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


# --- the event the edge would build ---------------------------------------------------------


def _edge_invocation(
    config: Config,
    route: Route,
    stage: Stage,
    args: argparse.Namespace,
    viewer: Request,
    hook: Hook,
) -> Invocation:
    meta = EventMeta(config.edge.distribution_domain_name, config.edge.distribution_id)
    if not any(name.lower() == "host" for name, _ in args.header):
        args.header.insert(0, ("Host", meta.distribution_domain_name))
    received = replace(sample_request(Stage.VIEWER_REQUEST, args), scheme=viewer.scheme)
    request = _stage_request(config, route, stage, received)
    include = hook.include_body and may_include_body(stage)
    if takes_request(stage):
        event = request_event(stage, request, meta, REQUEST_ID, include)
        return Invocation(stage, event, request, None, include)
    answer = sample_response(args)
    event = response_event(stage, request, answer, meta, REQUEST_ID)
    return Invocation(stage, event, request, answer, False)


def _stage_request(
    config: Config, route: Route, stage: Stage, received: EdgeRequest
) -> EdgeRequest:
    """The request ``stage`` sees, by the steps pipeline.py takes (its step numbers): the
    viewer's at viewer-request; the CloudFront-* headers after it; what the origin gets at
    the origin stages."""
    sent = sent_cf_headers(received.headers)
    trusted: dict[str, str] = {}
    viewer = received
    if config.edge.geo.trust_viewer_headers:
        headers, trusted = split_viewer_cf_headers(received.headers)
        viewer = replace(received, headers=headers)
    if stage == Stage.VIEWER_REQUEST:  # Lambda@Edge sees no CloudFront-* header of ours
        return viewer
    viewer = replace(viewer, headers=toward_origin(viewer.headers, sent, route.cf_header_names))
    if stage == Stage.VIEWER_RESPONSE:
        return viewer
    geo = GeoLocator.from_settings(
        config.edge.geo, config.distribution.restrictions.geo_restriction
    )
    facts = ViewerFacts(viewer, geo.locate(viewer.client_ip), trusted)
    cf: Headers = viewer_cf_headers(route.cf_header_names, facts) if route.cf_header_names else []
    origin = route.origins[viewer.scheme].targets[0]  # the behavior's origin (a group's primary)
    keyed = replace(viewer, headers=[*viewer.headers, *cf], origin=origin)
    return origin_request(keyed, route.key_policy, VIA)
