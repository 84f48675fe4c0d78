"""One function called as the edge would call it for a path of a distribution: the one
place ``edgeproxy invoke --config FILE --path P`` and the pytest plugin's
``invoke(…, config=…)`` (``testing/invoking.py``) read.

The path selects the cache behavior (``routes.Routes.select``, as the pipeline does); that
behavior's ``lambda_function_association`` at the stage gives the function (when none is
named), its ``include_body`` and ``timeout``; the event carries the distribution's names and,
after viewer-request, the ``CloudFront-*`` headers the behavior forwards, derived from the
viewer's address and User-Agent by the edge's own functions
(``viewer/cloudfront_headers.py``); at the origin stages the request is what the origin would
get (``origin/forwarding.py``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

from edgeproxy.config.config_model import Config
from edgeproxy.functions.events import EventMeta, request_event, response_event
from edgeproxy.functions.hooks import Hook
from edgeproxy.functions.invoke import (
    REQUEST_ID,
    VIA,
    Invocation,
    cli_hook,
    sample_request,
    sample_response,
)
from edgeproxy.messages import EdgeRequest, Headers
from edgeproxy.origin.forwarding import origin_request
from edgeproxy.routes import Route, Routes
from edgeproxy.stages import Stage, may_include_body, takes_request
from edgeproxy.viewer.cloudfront_headers import (
    ViewerFacts,
    sent_cf_headers,
    split_viewer_cf_headers,
    toward_origin,
    viewer_cf_headers,
)
from edgeproxy.viewer.geo import GeoLocator


class NoFunction(ValueError):
    """The behavior runs no Lambda@Edge function at the stage and none was named."""


@dataclass(frozen=True, slots=True)
class EdgeCall:
    """The function to call (with the behavior's settings) and the event the edge builds."""

    hook: Hook
    invocation: Invocation
    route: Route


def edge_call(config: Config, stage: Stage, args: argparse.Namespace, scheme: str) -> EdgeCall:
    """``args`` are ``edgeproxy invoke``'s (``args.handler`` None: the behavior's function;
    ``args.timeout`` None: the association's); ``scheme`` the listener the viewer used."""
    route = Routes(config).select(args.uri)
    hook = _hook(route, stage, args)
    return EdgeCall(hook, _invocation(config, route, stage, args, scheme, hook), route)


def behavior_key(config: Config, route: Route) -> str:
    """The key path of the behavior a route serves, for messages."""
    if route.index >= len(config.distribution.ordered_cache_behavior):
        return "distribution.default_cache_behavior"
    return f"distribution.ordered_cache_behavior[{route.index}]"


def _hook(route: Route, stage: Stage, args: argparse.Namespace) -> Hook:
    """The association's hook; a named function takes its place with its settings."""
    associated = route.hooks.get(stage)
    if args.handler is None:
        if associated is None:
            raise NoFunction(_missing(route, stage))
        hook = associated
    else:
        include = associated.include_body if associated is not None else False
        hook = cli_hook(args, stage, include)
        if args.timeout is None and associated is not None:
            hook = replace(hook, timeout_s=associated.timeout_s)
    if args.timeout is not None:
        hook = replace(hook, timeout_s=args.timeout)
    return hook


def _missing(route: Route, stage: Stage) -> str:
    where = f"the behavior for {route.behavior.path_pattern}"
    if stage in route.functions:
        return (
            f"{where} runs a CloudFront Function at {stage}: test it through the edge "
            "(run_edge) or `edgeproxy test-function`"
        )
    return f"no function at {stage} for {where}: name a handler, or associate one"


def _invocation(
    config: Config, route: Route, stage: Stage, args: argparse.Namespace, scheme: str, hook: Hook
) -> Invocation:
    meta = EventMeta(config.edge.distribution_domain_name, config.edge.distribution_id)
    headers = list(args.header or [])
    if not any(name.lower() == "host" for name, _ in headers):
        headers.insert(0, ("Host", meta.distribution_domain_name))
    viewer_args = argparse.Namespace(**{**vars(args), "header": headers})
    received = replace(sample_request(Stage.VIEWER_REQUEST, viewer_args), scheme=scheme)
    request = stage_request(config, route, stage, received)
    include = hook.include_body and may_include_body(stage)
    if takes_request(stage):
        event = request_event(stage, request, meta, REQUEST_ID, include)
        return Invocation(stage, event, request, None, include)
    answer = sample_response(args)
    event = response_event(stage, request, answer, meta, REQUEST_ID)
    return Invocation(stage, event, request, answer, False)


def stage_request(config: Config, route: Route, stage: Stage, received: EdgeRequest) -> EdgeRequest:
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
