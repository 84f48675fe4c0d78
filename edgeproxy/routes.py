"""Routes: each cache behavior resolved once at start into everything a request needs
(origin target, key and TTL policies, hooks, CloudFront-* header names), so the pipeline
never re-reads config on the hot path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .behaviors import BehaviorSelector
from .cachekey import KeyPolicy
from .config import CacheBehavior, Config, Origin
from .hooks import Hook, build_hooks
from .loader import LoadedHandler
from .messages import OriginTarget
from .stages import Stage
from .ttl import TtlPolicy
from .viewer import VIEWER_HEADERS

_PROTOCOL_FOR_POLICY = {"http-only": "http", "https-only": "https"}


@dataclass(frozen=True, slots=True)
class Route:
    """One cache behavior, ready to serve."""

    index: int
    behavior: CacheBehavior
    origins: Mapping[str, OriginTarget]  # viewer scheme → where the origin fetch goes
    key_policy: KeyPolicy
    ttl_policy: TtlPolicy
    hooks: Mapping[Stage, Hook]
    cf_header_names: tuple[str, ...]  # CloudFront-* headers to add, lower-case
    allowed_methods: frozenset[str]
    cached_methods: frozenset[str]
    viewer_protocol_policy: str
    strip_set_cookie: bool  # cookies not forwarded: Set-Cookie removed (reference 7.7)


class Routes:
    """Every behavior as a Route, selected by the viewer's path."""

    def __init__(self, config: Config) -> None:
        dist = config.distribution
        self._selector = BehaviorSelector(dist)
        loaded: dict[str, LoadedHandler] = {}  # a handler named twice is loaded once
        self.routes = tuple(
            _route(i, b, dist.target_origin(b.target_origin_id), config, loaded)
            for i, b in enumerate(dist.behaviors)
        )

    def select(self, path: str) -> Route:
        index, _ = self._selector.select(path)
        return self.routes[index]


def _route(
    index: int,
    behavior: CacheBehavior,
    origin: Origin,
    config: Config,
    loaded: dict[str, LoadedHandler],
) -> Route:
    forwarded = behavior.forwarded_values
    header_names = tuple(h.lower() for h in forwarded.headers) if forwarded else ()
    cookies_forwarded = forwarded is not None and forwarded.cookies.forward != "none"
    return Route(
        index=index,
        behavior=behavior,
        origins={scheme: origin_target(origin, scheme) for scheme in ("http", "https")},
        key_policy=KeyPolicy.from_behavior(behavior),
        ttl_policy=TtlPolicy.from_behavior(behavior, config.distribution.custom_error_response),
        hooks=build_hooks(
            behavior.lambda_function_association,
            config.base_dir,
            config.edge.handlers.isolation,
            loaded=loaded,
        ),
        cf_header_names=tuple(h for h in header_names if h in VIEWER_HEADERS),
        allowed_methods=frozenset(behavior.allowed_methods),
        cached_methods=frozenset(behavior.cached_methods),
        viewer_protocol_policy=behavior.viewer_protocol_policy,
        strip_set_cookie=not cookies_forwarded,
    )


def origin_target(origin: Origin, viewer_scheme: str) -> OriginTarget:
    """Where a fetch for a viewer on ``viewer_scheme`` goes (``match-viewer`` follows it)."""
    custom = origin.custom_origin_config
    policy = custom.origin_protocol_policy if custom else "https-only"
    protocol = _PROTOCOL_FOR_POLICY.get(policy, viewer_scheme)
    port = (custom.http_port if protocol == "http" else custom.https_port) if custom else 443
    return OriginTarget(
        domain_name=origin.domain_name,
        port=port,
        protocol=protocol,
        path=origin.origin_path,
        custom_headers=[(h.name, h.value) for h in origin.custom_header],
        read_timeout=float(custom.origin_read_timeout) if custom else 30.0,
        keepalive_timeout=float(custom.origin_keepalive_timeout) if custom else 5.0,
        ssl_protocols=tuple(custom.origin_ssl_protocols) if custom else ("TLSv1.2",),
        connection_timeout=float(origin.connection_timeout),
        connection_attempts=origin.connection_attempts,
    )
