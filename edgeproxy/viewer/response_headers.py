"""A response headers policy applied to a response on its way to the viewer.

Theory of operation [DG understanding-response-headers-policies, modifying-response-headers]
---------------------------------------------------------------------------------------
``ResponseHeaders.from_policy`` compiles an ``aws_cloudfront_response_headers_policy``
(managed or inline, ``config/policies.py``) once per cache behavior into plain tables; the hit path
only scans header lists. ``apply_response_headers`` then, for every response CloudFront sends
for the behavior (from the cache, from the origin, error responses too):

1. removes the headers in ``remove_headers_config`` (the edge's own X-Cache, Via, … cannot be
   named there: the config refuses them);
2. adds the policy's headers. A header whose ``override`` is true replaces the response's;
   with ``override`` false the response's own header wins when present. A removed header that
   the policy also adds is added ("removes first, then adds");
3. adds ``Server-Timing`` when enabled and the request is sampled (``sampling_rate`` percent
   of requests, and always when the viewer sent ``Pragma: server-timing``).

CORS (the cors_config block) applies only to CORS requests, those with an ``Origin`` header,
and only when that origin is allowed (``*``, an exact origin, or ``*.example.org``):

* every CORS response: Access-Control-Allow-Origin (``*``, or the viewer's origin echoed
  with ``Vary: Origin`` when the list names origins [inf]), Access-Control-Allow-Credentials
  (``true`` when set), Access-Control-Expose-Headers;
* preflights only (OPTIONS with Access-Control-Request-Method): Access-Control-Allow-Methods
  (``ALL`` written out), Access-Control-Allow-Headers, Access-Control-Max-Age. The DG
  documents these three "in responses to CORS preflight requests" alone.

With credentials allowed and ``*`` listed, the viewer's origin is echoed instead of ``*``,
which a browser would refuse with credentials [inf; Fetch standard].

``preflight_response`` is the edge answering a preflight itself. CloudFront's docs do not say
when a preflight stops at the edge; we answer it there only when the policy's CORS block has
``origin_override: true`` (whatever the origin said about CORS would be replaced anyway), and
let it reach the origin otherwise (it needs OPTIONS in allowed_methods, as on CloudFront)
[inf]. The answer is ``200`` with an empty body and the policy's CORS headers.

Header values written here [DG understanding-response-headers-policies]: HSTS
``max-age=N; includeSubDomains; preload``; X-XSS-Protection ``1; mode=block``,
``1; report=<uri>`` or ``0``; X-Content-Type-Options ``nosniff``. The separators ("; ",
", ") are ours [inf].
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from edgeproxy.config.response_headers_policy import (
    CorsConfig,
    CustomHeadersConfig,
    ResponseHeadersPolicyConfig,
    SecurityHeadersConfig,
)
from edgeproxy.messages import EdgeRequest, EdgeResponse, Header, Headers

ALL_METHODS = "GET, DELETE, HEAD, OPTIONS, PATCH, POST, PUT"
PREFLIGHT_STATUS = 200


@dataclass(frozen=True, slots=True)
class Added:
    """A header the policy adds: its name, value and whether it beats the response's own."""

    name: str
    value: str
    override: bool
    lname: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lname", self.name.lower())


@dataclass(frozen=True, slots=True)
class Cors:
    """The cors_config block, compiled."""

    any_origin: bool
    origins: frozenset[str]  # exact origins, lower-case
    wildcards: tuple[tuple[str, str], ...]  # (scheme prefix or "", ".example.org")
    credentials: bool
    expose_headers: str
    allow_methods: str
    allow_headers: str
    max_age: str
    override: bool

    @classmethod
    def from_config(cls, cors: CorsConfig) -> Cors:
        origins = [o.lower() for o in cors.access_control_allow_origins.items]
        wildcards = tuple(_wildcard(o) for o in origins if "*" in o and o != "*")
        methods = cors.access_control_allow_methods.items
        expose = cors.access_control_expose_headers
        max_age = cors.access_control_max_age_sec
        return cls(
            any_origin="*" in origins,
            origins=frozenset(o for o in origins if "*" not in o),
            wildcards=wildcards,
            credentials=cors.access_control_allow_credentials,
            expose_headers=", ".join(expose.items) if expose else "",
            allow_methods=ALL_METHODS if "ALL" in methods else ", ".join(methods),
            allow_headers=", ".join(cors.access_control_allow_headers.items),
            max_age="" if max_age is None else str(max_age),
            override=cors.origin_override,
        )

    def allows(self, origin: str) -> bool:
        lowered = origin.lower()
        if self.any_origin or lowered in self.origins:
            return True
        for scheme, suffix in self.wildcards:
            rest = lowered[len(scheme) :] if lowered.startswith(scheme) else None
            if rest is not None and rest.endswith(suffix) and len(rest) > len(suffix):
                return True
        return False

    def headers(self, origin: str, preflight: bool) -> list[Added]:
        """The CORS headers for a request from an allowed ``origin``."""
        echo = not self.any_origin or self.credentials
        added = [Added("Access-Control-Allow-Origin", origin if echo else "*", self.override)]
        if echo:
            added.append(Added("Vary", "Origin", False))
        if self.credentials:
            added.append(Added("Access-Control-Allow-Credentials", "true", self.override))
        if self.expose_headers:
            added.append(Added("Access-Control-Expose-Headers", self.expose_headers, self.override))
        if preflight:
            added.extend(self._preflight_headers())
        return added

    def _preflight_headers(self) -> list[Added]:
        values = (
            ("Access-Control-Allow-Methods", self.allow_methods),
            ("Access-Control-Allow-Headers", self.allow_headers),
            ("Access-Control-Max-Age", self.max_age),
        )
        return [Added(name, value, self.override) for name, value in values if value]


def _wildcard(pattern: str) -> tuple[str, str]:
    scheme, sep, host = pattern.partition("://")
    if not sep:
        return "", host.removeprefix("*")
    return f"{scheme}://", host.removeprefix("*")


@dataclass(frozen=True, slots=True)
class ServerTiming:
    """What the pipeline knows for the Server-Timing metrics of one response."""

    result: str  # "hit", "miss" or "refresh" (cdn-cache-hit / -miss / -refresh)
    pop: str
    request_id: str
    hit_layer: str = "EDGE"  # the tier that held a hit: EDGE (the PoP's cache) or REC
    upstream_fbl_ms: int | None = None  # origin first-byte latency, on a miss
    downstream_fbl_ms: int | None = None

    def value(self) -> str:
        parts = [f"cdn-cache-{self.result}", f'cdn-pop;desc="{self.pop}"']
        parts.append(f'cdn-rid;desc="{self.request_id}"')
        if self.result == "hit":
            parts.append(f'cdn-hit-layer;desc="{self.hit_layer}"')
        elif self.upstream_fbl_ms is not None:
            parts.insert(0, 'cdn-upstream-layer;desc="EDGE"')
            parts.append(f"cdn-upstream-fbl;dur={self.upstream_fbl_ms}")
        if self.downstream_fbl_ms is not None:
            parts.append(f"cdn-downstream-fbl;dur={self.downstream_fbl_ms}")
        return ",".join(parts)


@dataclass(frozen=True, slots=True)
class ResponseHeaders:
    """One response headers policy, ready to apply (see the module docstring)."""

    name: str
    remove: frozenset[str]
    fixed: tuple[Added, ...]  # security and custom headers, in policy order
    cors: Cors | None = None
    server_timing_rate: float | None = None  # percent; None when disabled

    @classmethod
    def from_policy(cls, policy: ResponseHeadersPolicyConfig) -> ResponseHeaders:
        removed = policy.remove_headers_config
        timing = policy.server_timing_headers_config
        return cls(
            name=policy.name,
            remove=frozenset(i.header.lower() for i in removed.items) if removed else frozenset(),
            fixed=(
                *_security_headers(policy.security_headers_config),
                *_custom_headers(policy.custom_headers_config),
            ),
            cors=Cors.from_config(policy.cors_config) if policy.cors_config else None,
            server_timing_rate=timing.sampling_rate if timing and timing.enabled else None,
        )


def _security_headers(config: SecurityHeadersConfig | None) -> list[Added]:
    if config is None:
        return []
    out: list[Added] = []
    if config.content_security_policy:
        csp = config.content_security_policy
        out.append(Added("Content-Security-Policy", csp.content_security_policy, csp.override))
    if config.content_type_options:
        out.append(Added("X-Content-Type-Options", "nosniff", config.content_type_options.override))
    if config.frame_options:
        fo = config.frame_options
        out.append(Added("X-Frame-Options", fo.frame_option, fo.override))
    if config.referrer_policy:
        rp = config.referrer_policy
        out.append(Added("Referrer-Policy", rp.referrer_policy, rp.override))
    if config.strict_transport_security:
        sts = config.strict_transport_security
        value = f"max-age={sts.access_control_max_age_sec}"
        value += "; includeSubDomains" if sts.include_subdomains else ""
        value += "; preload" if sts.preload else ""
        out.append(Added("Strict-Transport-Security", value, sts.override))
    if config.xss_protection:
        xss = config.xss_protection
        value = "1" if xss.protection else "0"
        if xss.protection and xss.mode_block:
            value += "; mode=block"
        elif xss.protection and xss.report_uri:
            value += f"; report={xss.report_uri}"
        out.append(Added("X-XSS-Protection", value, xss.override))
    return out


def _custom_headers(config: CustomHeadersConfig | None) -> list[Added]:
    if config is None:
        return []
    return [Added(item.header, item.value, item.override) for item in config.items]


# --- applying --------------------------------------------------------------------------------


@dataclass(slots=True)
class _RequestFacts:
    method: str
    origin: str | None = None
    request_method: str | None = None  # Access-Control-Request-Method
    pragma_timing: bool = False

    @property
    def preflight(self) -> bool:
        """OPTIONS with Origin and Access-Control-Request-Method (the Fetch standard's test)."""
        return (
            self.method == "OPTIONS" and self.origin is not None and self.request_method is not None
        )


def _facts(request: EdgeRequest) -> _RequestFacts:
    facts = _RequestFacts(request.method)
    for name, value in request.headers:
        lname = name.lower()
        if lname == "origin" and facts.origin is None:
            facts.origin = value
        elif lname == "access-control-request-method":
            facts.request_method = value
        elif lname == "pragma" and "server-timing" in value.lower():
            facts.pragma_timing = True
    return facts


def apply_response_headers(
    policy: ResponseHeaders,
    request: EdgeRequest,
    response_headers: Headers,
    status: int,
    *,
    timing: ServerTiming | None = None,
) -> Headers:
    """``response_headers`` as the viewer gets them under ``policy`` (a new list; the input
    is not changed). ``status`` decides the preflight-only CORS headers, which go on a 2xx
    answer to a preflight alone; ``timing`` feeds Server-Timing when the policy enables it."""
    facts = _facts(request)
    added = list(policy.fixed)
    if policy.cors is not None and facts.origin is not None and policy.cors.allows(facts.origin):
        added[:0] = policy.cors.headers(facts.origin, facts.preflight and 200 <= status < 300)
    out = [h for h in response_headers if h[0].lower() not in policy.remove]
    out = _add(out, added)
    if timing is not None and _timed(policy, facts, timing):
        out = _with_server_timing(out, timing)
    return out


def _add(headers: Headers, added: list[Added]) -> Headers:
    if not added:
        return headers
    replaced = {a.lname for a in added if a.override}
    present = {name.lower() for name, _ in headers}
    out = [h for h in headers if h[0].lower() not in replaced] if replaced else headers
    for header in added:
        if header.lname == "vary" and header.lname in present:
            out = _vary_with(out, header.value)
        elif header.override or header.lname not in present:
            out.append((header.name, header.value))
            present.add(header.lname)
    return out


def _vary_with(headers: Headers, field: str) -> Headers:
    """``headers`` whose Vary also names ``field`` (added to the first Vary header)."""
    for index, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            if field.lower() in (v.strip().lower() for v in value.split(",")):
                return headers
            return [*headers[:index], (name, f"{value}, {field}"), *headers[index + 1 :]]
    return headers


def _timed(policy: ResponseHeaders, facts: _RequestFacts, timing: ServerTiming) -> bool:
    rate = policy.server_timing_rate
    if rate is None:
        return False
    if facts.pragma_timing or rate >= 100:
        return True
    # Deterministic sampling by request id: a pure function, yet `rate` % of requests.
    bucket = zlib.crc32(timing.request_id.encode()) % 1_000_000 / 10_000
    return bucket < rate


def _with_server_timing(headers: Headers, timing: ServerTiming) -> Headers:
    """CloudFront's metrics; on a miss or refresh the origin's Server-Timing value is kept
    after them, on a hit only CloudFront's are sent [DG, Server-Timing header from origin]."""
    origin_values = [v for k, v in headers if k.lower() == "server-timing"]
    rest: list[Header] = [h for h in headers if h[0].lower() != "server-timing"]
    value = timing.value()
    if origin_values and timing.result != "hit":
        value = ",".join([value, *origin_values])
    rest.append(("Server-Timing", value))
    return rest


def preflight_response(policy: ResponseHeaders, request: EdgeRequest) -> EdgeResponse | None:
    """The edge's own answer to a CORS preflight, or None when the request goes on (see the
    module docstring for when the edge answers)."""
    cors = policy.cors
    if cors is None or not cors.override or request.method != "OPTIONS":
        return None
    facts = _facts(request)
    if facts.origin is None or not facts.preflight or not cors.allows(facts.origin):
        return None
    headers: Headers = [("Content-Length", "0"), ("Server", "CloudFront")]
    headers = _add(headers, cors.headers(facts.origin, preflight=True))
    return EdgeResponse(PREFLIGHT_STATUS, headers, b"", "OK")
