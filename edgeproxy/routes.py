"""Routes: each cache behavior resolved once at start into everything a request needs
(origin target, key and TTL policies, hooks, CloudFront-* header names), so the pipeline
never re-reads config on the hot path."""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from edgeproxy.behaviors import BehaviorSelector
from edgeproxy.cache.compression import CompressionPolicy
from edgeproxy.cache.key import KeyPolicy
from edgeproxy.cache.ttl import TtlPolicy
from edgeproxy.cache.vary import DEVICE_HEADER_PREFIX, VaryRule
from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.config_model import Config
from edgeproxy.config.distribution import Origin
from edgeproxy.config.edge_settings import CloudFrontFunctionEntry
from edgeproxy.config.policies import BehaviorPolicies
from edgeproxy.errors import ConfigError
from edgeproxy.functions.cloudfront.stores import (
    CloudFrontFunction,
    KeyValueStore,
    load_function,
    open_stores,
)
from edgeproxy.functions.hooks import Hook, Loaded, build_hooks
from edgeproxy.messages import OriginChain, OriginTarget
from edgeproxy.stages import Stage
from edgeproxy.viewer.cloudfront_headers import ORIGIN_REQUEST_POLICY_ONLY, VIEWER_HEADERS
from edgeproxy.viewer.geo import GeoGate
from edgeproxy.viewer.response_headers import ResponseHeaders

_PROTOCOL_FOR_POLICY = {"http-only": "http", "https-only": "https"}

log = logging.getLogger("edgeproxy.config")


@dataclass(frozen=True, slots=True)
class Route:
    """One cache behavior, ready to serve."""

    index: int
    behavior: CacheBehavior
    origins: Mapping[str, OriginChain]  # viewer scheme → the origin (or origin group) to try
    key_policy: KeyPolicy
    ttl_policy: TtlPolicy
    hooks: Mapping[Stage, Hook]
    cf_header_names: tuple[str, ...]  # CloudFront-* headers to add, lower-case
    allowed_methods: frozenset[str]
    cached_methods: frozenset[str]
    viewer_protocol_policy: str
    strip_set_cookie: bool  # cookies not forwarded: Set-Cookie removed (reference 7.7)
    vary: VaryRule  # the Vary values passed on to viewers (cache/vary.py)
    policies: BehaviorPolicies = BehaviorPolicies()  # cache / origin request / response headers
    response_headers: ResponseHeaders | None = None  # response_headers.apply_response_headers
    compression: CompressionPolicy = CompressionPolicy()  # compression.maybe_compress

    # restrictions.geo_restriction is the distribution's, judged on every request.
    geo_restricted: bool = False
    # CloudFront Functions by stage (function_association), beside ``hooks`` (Lambda@Edge):
    # a stage has one or the other, never both (config/behaviors.py).
    functions: Mapping[Stage, CloudFrontFunction] = field(default_factory=dict)
    # Every origin and origin group of the distribution by ID, then viewer scheme: what a
    # CloudFront Function's origin helpers may pick (functions/cloudfront/origins.py).
    origin_ids: Mapping[str, Mapping[str, OriginChain]] = field(default_factory=dict)

    # Nothing but the cache lookup runs for a fresh hit on this behavior (``steps_on_a_hit``
    # is empty): ``Edge.hit`` serves such hits without a task or an await. Derived once.
    fast_hits: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fast_hits", not steps_on_a_hit(self))  # frozen: set once

    def origin_by_id(self, scheme: str) -> Callable[[str], OriginChain | None]:
        """An origin ID → its chain for a viewer on ``scheme``; None for an unknown ID."""

        def lookup(origin_id: str) -> OriginChain | None:
            found = self.origin_ids.get(origin_id)
            return found[scheme] if found is not None else None

        return lookup


# What may run for a fresh hit besides the lookup, each read from the behavior (or the
# distribution): the one predicate that sends a hit down the full flow.
HIT_STEPS: tuple[tuple[str, Callable[[Route], bool]], ...] = (
    ("viewer protocol policy", lambda r: r.viewer_protocol_policy != "allow-all"),
    ("geo restriction", lambda r: r.geo_restricted),
    (
        "viewer-request",
        lambda r: Stage.VIEWER_REQUEST in r.hooks or Stage.VIEWER_REQUEST in r.functions,
    ),
    ("CloudFront-* headers", lambda r: bool(r.cf_header_names)),
    (
        "viewer-response",
        lambda r: Stage.VIEWER_RESPONSE in r.hooks or Stage.VIEWER_RESPONSE in r.functions,
    ),
    ("response headers policy", lambda r: r.response_headers is not None),
)


def steps_on_a_hit(route: Route) -> tuple[str, ...]:
    """The steps a fresh hit on ``route`` takes besides the cache lookup."""
    return tuple(name for name, runs in HIT_STEPS if runs(route))


class Routes:
    """Every behavior as a Route, selected by the viewer's path."""

    def __init__(self, config: Config) -> None:
        dist = config.distribution
        self._selector = BehaviorSelector(dist)
        loaded: Loaded = {}  # a handler named twice is loaded once
        stores = open_stores(
            {arn: config.path(file) for arn, file in config.edge.key_value_stores.items()}
        )
        functions: dict[str, CloudFrontFunction] = {}
        by_id = _origins_by_id(config)
        self.routes = tuple(
            _route(i, b, config, loaded, _functions(b, config, stores, functions), by_id)
            for i, b in enumerate(dist.behaviors)
        )

    def select(self, path: str) -> Route:
        index, _ = self._selector.select(path)
        return self.routes[index]


def _functions(
    behavior: CacheBehavior,
    config: Config,
    stores: dict[str, KeyValueStore],
    known: dict[str, CloudFrontFunction],
) -> dict[Stage, CloudFrontFunction]:
    """The behavior's CloudFront Functions by stage, each read once however many behaviors
    name it (the config check read the files already)."""
    found = {}
    for association in behavior.function_association:
        arn = association.function_arn
        if arn not in known:
            entry = config.edge.functions[arn]
            assert isinstance(entry, CloudFrontFunctionEntry)  # the config check saw to it
            known[arn] = load_function(
                arn, config.path(entry.file), entry.runtime, stores, entry.key_value_store
            )
        found[Stage(association.event_type)] = known[arn]
    return found


def _route(
    index: int,
    behavior: CacheBehavior,
    config: Config,
    loaded: Loaded,
    functions: Mapping[Stage, CloudFrontFunction],
    origin_ids: Mapping[str, Mapping[str, OriginChain]],
) -> Route:
    dist = config.distribution
    policies = behavior.policies()
    header_names = _named_headers(behavior, policies)
    key_policy = KeyPolicy.from_behavior(behavior)
    rhp = policies.response_headers
    ttl_policy = TtlPolicy.from_behavior(behavior, config.distribution.custom_error_response)
    return Route(
        index=index,
        behavior=behavior,
        origins=origin_ids[behavior.target_origin_id],
        key_policy=key_policy,
        ttl_policy=ttl_policy,
        hooks=build_hooks(
            behavior.lambda_function_association,
            config.base_dir,
            config.edge.handlers.isolation,
            loaded=loaded,
            concurrency=config.edge.handlers.concurrency,
            init_timeout=config.edge.handlers.init_timeout,
        ),
        cf_header_names=tuple(h for h in header_names if h in VIEWER_HEADERS),
        allowed_methods=frozenset(behavior.allowed_methods),
        cached_methods=frozenset(behavior.cached_methods),
        viewer_protocol_policy=behavior.viewer_protocol_policy,
        strip_set_cookie=key_policy.origin_cookies.empty,
        vary=VaryRule(
            key_policy.origin_headers,
            device_headers=any(h.startswith(DEVICE_HEADER_PREFIX) for h in header_names),
            star=ttl_policy.min_ttl == 0,
        ),
        policies=policies,
        response_headers=ResponseHeaders.from_policy(rhp) if rhp is not None else None,
        compression=CompressionPolicy.of(behavior, key_policy, ttl_policy),
        geo_restricted=GeoGate.from_restriction(dist.restrictions.geo_restriction).active,
        functions=functions,
        origin_ids=origin_ids,
    )


def _named_headers(behavior: CacheBehavior, policies: BehaviorPolicies) -> tuple[str, ...]:
    """Lower-case header names the key or the forwarding names: the CloudFront-* headers to
    generate are among them (legacy forwarded_values, or the cache policy + ORP lists). A
    cache key cannot hold the headers only an origin request policy may name."""
    if behavior.forwarded_values is not None:
        return _key_names(behavior.forwarded_values.headers)
    names = [*_key_names(policies.cache.key.headers_config.names)] if policies.cache else []
    if policies.origin_request is not None:
        names.extend(policies.origin_request.headers_config.names)
    return tuple(dict.fromkeys(n.lower() for n in names))


def _key_names(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n.lower() for n in names if n.lower() not in ORIGIN_REQUEST_POLICY_ONLY)


def _origins_by_id(config: Config) -> dict[str, dict[str, OriginChain]]:
    """Each origin, and each origin group (its primary, then its secondary), by ID and
    viewer scheme: a behavior's target and what origin helpers select."""
    dist = config.distribution
    found = {o.origin_id: _chains(config, o) for o in dist.origin}
    for group in dist.origin_group:
        codes = frozenset(group.failover_criteria.status_codes)
        primary, secondary = (found[m.origin_id] for m in group.member)
        found[group.origin_id] = {
            scheme: OriginChain((*primary[scheme].targets, *secondary[scheme].targets), codes)
            for scheme in _SCHEMES
        }
    return found


_SCHEMES = ("http", "https")


def _chains(config: Config, origin: Origin) -> dict[str, OriginChain]:
    return {scheme: OriginChain((t,)) for scheme, t in _targets(config, origin).items()}


def _targets(config: Config, origin: Origin) -> dict[str, OriginTarget]:
    """Per viewer scheme, with the origin's HTTPS trust (``edge.origins``) attached."""
    trust = config.edge.origins.get(origin.origin_id)
    targets = {scheme: origin_target(origin, scheme) for scheme in _SCHEMES}
    if trust is None:
        return targets
    where = f"edge.origins.{origin.origin_id}"
    ca_file = str(config.path(trust.ca_file)) if trust.ca_file else ""
    if ca_file:
        try:
            ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError([(f"{where}.ca_file", f"not a PEM CA bundle: {exc}")]) from exc
    if not trust.verify:
        log.warning("%s.verify is false: the origin's certificate is not checked", where)
    return {s: replace(t, ca_file=ca_file, verify=trust.verify) for s, t in targets.items()}


def origin_target(origin: Origin, viewer_scheme: str) -> OriginTarget:
    """Where a fetch for a viewer on ``viewer_scheme`` goes (``match-viewer`` follows it).
    An origin without ``custom_origin_config`` is S3-style (CloudFront knows no third kind):
    HTTPS on 443 to its domain, shown to handlers as ``origin.s3``."""
    custom = origin.custom_origin_config
    if custom is None:
        return _s3_target(origin)
    policy = custom.origin_protocol_policy
    protocol = _PROTOCOL_FOR_POLICY.get(policy, viewer_scheme)
    port = custom.http_port if protocol == "http" else custom.https_port
    return OriginTarget(
        domain_name=origin.domain_name,
        port=port,
        protocol=protocol,
        path=origin.origin_path,
        custom_headers=[(h.name, h.value) for h in origin.custom_header],
        read_timeout=float(custom.origin_read_timeout),
        keepalive_timeout=float(custom.origin_keepalive_timeout),
        ssl_protocols=tuple(custom.origin_ssl_protocols),
        connection_timeout=float(origin.connection_timeout),
        connection_attempts=origin.connection_attempts,
    )


# bucket.s3.eu-west-1.amazonaws.com, bucket.s3-eu-west-1…, bucket.s3.dualstack.eu-west-1…
_S3_REGION = re.compile(r"\.s3(?:[.-]dualstack)?[.-]([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com$")
_S3_DEFAULT_REGION = "us-east-1"  # bucket.s3.amazonaws.com, the legacy global endpoint


def _s3_target(origin: Origin) -> OriginTarget:
    # CloudFront's own access to the bucket, an origin access identity or origin access
    # control, shows in the event as "origin-access-identity"; "none" without either.
    s3_config = origin.s3_origin_config
    identity = s3_config.origin_access_identity if s3_config is not None else ""
    authenticated = bool(identity or origin.origin_access_control_id)
    region = _S3_REGION.search(origin.domain_name.lower())
    return OriginTarget(
        domain_name=origin.domain_name,
        port=443,
        protocol="https",
        path=origin.origin_path,
        custom_headers=[(h.name, h.value) for h in origin.custom_header],
        connection_timeout=float(origin.connection_timeout),
        connection_attempts=origin.connection_attempts,
        kind="s3",
        s3_auth_method="origin-access-identity" if authenticated else "none",
        s3_region=region.group(1) if region else _S3_DEFAULT_REGION,
    )
