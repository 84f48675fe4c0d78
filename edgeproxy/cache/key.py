"""The cache key, and what of the viewer's request reaches the origin (reference 6.2, 7.5-7.7).

Theory of operation
-------------------
A ``KeyPolicy`` is built once per cache behaviour (``KeyPolicy.from_behavior``, from the
``CacheBehavior`` model) and says, for query strings, headers and cookies, which go in the
cache key and which are forwarded to the origin. Each of those is a ``Selection``
(``cache/selection.py``).

``cache_key`` builds a ``CacheKey`` (a named tuple: cheap to hash, and its ``uri`` lets the
store find every variant of a path for invalidation):

    host (distribution) · method (only for OPTIONS, 7.3) · uri · query string per policy ·
    named header values · cookies per policy, sorted by name · normalised Accept-Encoding

The host is the distribution's own domain name (``edge.distribution_domain_name``), never
the viewer's Host: a distribution's aliases, and viewers on HTTP and HTTPS, share objects
(DG understanding-the-cache-key, "The default cache key"). Only a policy that names Host
puts the viewer's Host in the key, lower-case and without a port (a port names the
listener the viewer reached, not a site [inf]).

``origin_headers`` / ``origin_querystring`` say what goes to the origin. Two modes:

* legacy ``forwarded_values`` (reference 6.2 table, DG RequestAndResponseBehaviorCustomOrigin):
  every viewer header is forwarded except the removed ones (``LEGACY_REMOVED``) unless the
  behaviour names them; Authorization is removed for GET/HEAD (and OPTIONS when OPTIONS is
  cached) unless named; User-Agent becomes ``Amazon CloudFront`` unless named; Host is left
  out unless named (the origin client sets the origin's domain). ``headers = ["*"]`` forwards
  everything and caches nothing. All query strings are forwarded whenever ``query_string``
  is true, even with ``query_string_cache_keys`` (those only narrow the key).
* cache policy (+ origin request policy): only the selected headers, plus the framing
  headers a body needs (``POLICY_ALWAYS_FORWARDED``, our choice [inf]).

In both, the Cookie header is rebuilt from the allowed cookies sorted by name (only
well-formed ``name=value`` pairs) and dropped when none is allowed, and Accept-Encoding is
normalised (``cache/encodings.py``: ``br,gzip``/``gzip``/``br``; ``identity`` when the key
normalises it but the viewer's accepts neither; dropped when the viewer sent none, or when
the key does not normalise it and no policy names it). Hop-by-hop headers, Via,
X-Forwarded-For and X-Amz-Cf-Id are the origin client's business.

Choice: legacy behaviours put the normalised Accept-Encoding (gzip) in the key whatever
``compress`` says, because CloudFront forwards the normalised header to the origin in legacy
mode and the origin may compress [inf].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from edgeproxy.cache.encodings import ENCODINGS, accepted_encodings
from edgeproxy.cache.selection import (
    ALL,
    ALL_EXCEPT,
    NO_HEADERS,
    NO_SELECTION,
    NONE,
    WHITELIST,
    Selection,
    cookie_pairs,
    headers_selection,
    select_query,
)
from edgeproxy.config.behaviors import CacheBehavior, Cookies, ForwardedValues
from edgeproxy.config.policy_models import CachePolicyConfig, OriginRequestPolicyConfig
from edgeproxy.messages import EdgeRequest, Header, Headers

USER_AGENT = "Amazon CloudFront"

# Removed from origin requests in legacy mode unless the behaviour names them (6.2).
LEGACY_REMOVED = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-language",
        "referer",
        "expect",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "x-forwarded-proto",
        "x-http-method-override",
        "x-real-ip",
    }
)
LEGACY_REMOVED_PREFIX = "x-edge-"
# Headers this module rebuilds or leaves to the origin client, whatever the mode.
_REBUILT = frozenset({"cookie", "accept-encoding", "host", "user-agent", "authorization"})
# Policy mode: what a body needs to reach the origin intact [inf].
POLICY_ALWAYS_FORWARDED = frozenset({"content-length", "content-type", "transfer-encoding"})
# Methods whose Authorization is dropped in legacy mode unless forwarded (DG Authorization).
_AUTH_STRIPPED = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """What goes in the cache key, and what is forwarded to the origin, for one behaviour."""

    query: Selection = NO_SELECTION  # key
    headers: Selection = NO_HEADERS  # key (none | whitelist)
    cookies: Selection = NO_SELECTION  # key
    encodings: tuple[str, ...] = ()  # normalised Accept-Encoding in the key: ⊆ ("br", "gzip")
    legacy: bool = True  # origin headers by the legacy table (else: selected ones only)
    origin_query: Selection = NO_SELECTION
    origin_headers: Selection = NO_HEADERS  # legacy: names forwarded beyond the defaults
    origin_cookies: Selection = NO_SELECTION
    auth_stripped_methods: frozenset[str] = _AUTH_STRIPPED  # legacy only

    @property
    def forward_all_headers(self) -> bool:
        """Legacy ``headers = ["*"]``: everything to the origin and nothing cached (7.5)."""
        return self.legacy and self.origin_headers.mode == ALL

    @property
    def collapsible(self) -> bool:
        """What forwarding says about request collapsing (read by ``collapsing.py``): off when
        the origin gets cookies (7.7, 7.13) or Authorization, from which it may make each
        viewer its own answer while the key does not tell the viewers apart. (Legacy
        behaviors forward Authorization on GET, the only collapsed method, only when named;
        "forward all headers" names it.)"""
        return self.origin_cookies.empty and not self.origin_headers.selects("authorization")

    @classmethod
    def from_behavior(cls, behavior: CacheBehavior) -> KeyPolicy:
        """A behavior's cache policy (inline or managed ID) if it has one, else its
        ``forwarded_values``."""
        policies = behavior.policies()
        if policies.cache is not None:
            return _from_policies(policies.cache, policies.origin_request)
        return _from_forwarded_values(behavior.forwarded_values, behavior.cached_methods)

    @classmethod
    def from_policies(
        cls, cache: CachePolicyConfig, origin_request: OriginRequestPolicyConfig | None = None
    ) -> KeyPolicy:
        """The key and forwarding of a cache policy plus an optional origin request policy
        (managed or inline, ``config/policies.py``), combined as reference 7.6 says."""
        return _from_policies(cache, origin_request)


# Legacy cache settings know gzip only (Brotli needs a cache policy, cache/compression.py), so
# their key holds a gzip-or-nothing Accept-Encoding: a viewer asking "gzip, br" and one
# asking "gzip" share the stored object.
_LEGACY_ENCODINGS = ("gzip",)


def _from_forwarded_values(fv: ForwardedValues | None, cached_methods: Iterable[str]) -> KeyPolicy:
    if fv is None:
        return KeyPolicy(encodings=_LEGACY_ENCODINGS)
    query, origin_query = _legacy_query(fv)
    cookies = _legacy_cookies(fv.cookies)
    names = fv.headers
    origin = headers_selection(ALL if "*" in names else WHITELIST, () if "*" in names else names)
    cached = {m.upper() for m in cached_methods}
    return KeyPolicy(
        query=query,
        headers=headers_selection(WHITELIST, () if "*" in names else names),
        cookies=cookies,
        encodings=_LEGACY_ENCODINGS,
        origin_query=origin_query,
        origin_headers=origin,
        origin_cookies=cookies,
        auth_stripped_methods=_AUTH_STRIPPED | ({"OPTIONS"} & cached),
    )


def _legacy_query(fv: ForwardedValues) -> tuple[Selection, Selection]:
    """(key, origin): all forwarded when ``query_string``; cache keys only narrow the key."""
    if not fv.query_string:
        return NO_SELECTION, NO_SELECTION
    keys = fv.query_string_cache_keys
    return (Selection(WHITELIST, keys) if keys else Selection(ALL)), Selection(ALL)


def _legacy_cookies(cookies: Cookies) -> Selection:
    names = cookies.whitelisted_names if cookies.forward == WHITELIST else ()
    return Selection(cookies.forward, names, wildcards=True)


# Terraform's header behaviors of an origin request policy → a Selection mode. The
# CloudFront-* headers of allViewerAndWhitelistCloudFront are added by
# viewer/cloudfront_headers.py (routes names them), so for forwarding it is "all viewer headers".
_ORIGIN_HEADER_MODES: Mapping[str, str] = {
    "none": NONE,
    "whitelist": WHITELIST,
    "allViewer": ALL,
    "allViewerAndWhitelistCloudFront": ALL,
    "allExcept": ALL_EXCEPT,
}


@dataclass(frozen=True, slots=True)
class _Parts:
    """Header, cookie and query selections of one policy."""

    headers: Selection = NO_HEADERS
    cookies: Selection = NO_SELECTION
    query: Selection = NO_SELECTION


def _cache_parts(policy: CachePolicyConfig) -> _Parts:
    key = policy.key
    return _Parts(
        headers_selection(key.headers_config.header_behavior, key.headers_config.names),
        Selection(key.cookies_config.cookie_behavior, key.cookies_config.names),
        Selection(key.query_strings_config.query_string_behavior, key.query_strings_config.names),
    )


def _origin_parts(policy: OriginRequestPolicyConfig | None) -> _Parts:
    if policy is None:
        return _Parts()
    headers = policy.headers_config
    mode = _ORIGIN_HEADER_MODES[headers.header_behavior]
    return _Parts(
        headers_selection(mode, () if mode == ALL else headers.names),
        Selection(policy.cookies_config.cookie_behavior, policy.cookies_config.names),
        Selection(
            policy.query_strings_config.query_string_behavior, policy.query_strings_config.names
        ),
    )


def _from_policies(cache: CachePolicyConfig, orp: OriginRequestPolicyConfig | None) -> KeyPolicy:
    key, extra = _cache_parts(cache), _origin_parts(orp)
    return KeyPolicy(
        query=key.query,
        headers=key.headers,
        cookies=key.cookies,
        encodings=cache.key.encodings,
        legacy=False,
        origin_query=key.query.union(extra.query),
        origin_headers=key.headers.union(extra.headers),
        origin_cookies=key.cookies.union(extra.cookies),
    )


class CacheKey(NamedTuple):
    """One cache entry's identity. ``uri`` and ``query`` also serve invalidation."""

    host: str
    method: str  # "OPTIONS" or "" (only OPTIONS is keyed by method, 7.3)
    uri: str
    query: str  # the key's query string ("" when none)
    headers: tuple[str | None, ...]  # values of the key's named headers, in policy order
    cookies: str  # "a=1; b=2", sorted by name
    encoding: str  # normalised Accept-Encoding ("br,gzip", "gzip", "br" or "")

    @property
    def target(self) -> str:
        """Path plus query string, what an invalidation path is matched against."""
        return f"{self.uri}?{self.query}" if self.query else self.uri


def cache_key(policy: KeyPolicy, request: EdgeRequest, host: str) -> CacheKey:
    """The cache key of ``request`` under ``policy`` for the distribution whose domain name
    is ``host`` (not the viewer's Host: see the module docstring)."""
    headers = request.headers
    values, accept_encoding = _scan_headers(policy, headers)
    return CacheKey(
        host,
        "OPTIONS" if request.method == "OPTIONS" else "",
        request.uri,
        select_query(policy.query, request.querystring),
        values,
        "" if policy.cookies.empty else "; ".join(cookie_pairs(policy.cookies, headers)),
        _key_encoding(policy, accept_encoding),
    )


def _scan_headers(policy: KeyPolicy, headers: Headers) -> tuple[tuple[str | None, ...], str | None]:
    """One pass over the viewer headers: the key's named header values (repeated ones joined
    with ","; None when absent) and the first Accept-Encoding."""
    selection = policy.headers
    if selection.empty and not policy.encodings:
        return (), None
    found: dict[str, str] = {}
    accept_encoding = None
    exact = frozenset[str]() if selection.empty else selection.exact_names
    for name, value in headers:
        lname = name.lower()
        if lname == "accept-encoding" and accept_encoding is None:
            accept_encoding = value
        if lname in exact if exact is not None else selection.selects(lname):
            if lname == "host":
                value = _site(value)
            found[lname] = f"{found[lname]},{value}" if lname in found else value
    if selection.empty:
        return (), accept_encoding
    return tuple(found.get(n) for n in selection.names), accept_encoding


def _site(host: str) -> str:
    """A Host value as the key holds it: lower-case, without a port (``[::1]:8443`` → ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def _key_encoding(policy: KeyPolicy, accept_encoding: str | None) -> str:
    # An HTTP/1.0 viewer's Accept-Encoding is gone already (request_checks.as_received).
    if not policy.encodings:
        return ""
    accepted = accepted_encodings(accept_encoding)
    if len(policy.encodings) == len(ENCODINGS):
        return accepted
    return ",".join(e for e in accepted.split(",") if e in policy.encodings)


def _first(headers: Iterable[Header], lname: str) -> str | None:
    for name, value in headers:
        if name.lower() == lname:
            return value
    return None


def origin_querystring(policy: KeyPolicy, querystring: str) -> str:
    """The query string sent to the origin."""
    return select_query(policy.origin_query, querystring)


def origin_headers(
    policy: KeyPolicy, request_headers: Iterable[Header], method: str = "GET"
) -> Headers:
    """Viewer headers as forwarded to the origin (see module docstring); Host is left out
    unless selected, because the origin client sets it to the origin's domain."""
    request_headers = list(request_headers)
    keep = _keep_legacy if policy.legacy else _keep_policy
    out = [(k, v) for k, v in request_headers if keep(policy, k.lower(), v, method)]
    if not policy.origin_headers.selects("user-agent"):
        out.append(("User-Agent", USER_AGENT))
    return out + _rebuilt_headers(policy, request_headers)


def _keep_legacy(policy: KeyPolicy, lname: str, value: str, method: str) -> bool:
    if lname in ("cookie", "accept-encoding"):
        return False
    if policy.origin_headers.selects(lname):
        return True
    if lname in _REBUILT:
        return lname == "authorization" and method not in policy.auth_stripped_methods
    if lname == "upgrade":
        return value.strip().lower() == "websocket"  # removed, except for WebSocket
    return lname not in LEGACY_REMOVED and not lname.startswith(LEGACY_REMOVED_PREFIX)


def _keep_policy(policy: KeyPolicy, lname: str, value: str, method: str) -> bool:
    if lname in ("cookie", "accept-encoding"):
        return False
    return lname in POLICY_ALWAYS_FORWARDED or policy.origin_headers.selects(lname)


def _rebuilt_headers(policy: KeyPolicy, request_headers: Headers) -> Headers:
    out: Headers = []
    if not policy.origin_cookies.empty:
        pairs = cookie_pairs(policy.origin_cookies, request_headers)
        if pairs:
            out.append(("Cookie", "; ".join(pairs)))
    encoding = _origin_encoding(policy, request_headers)
    if encoding:
        out.append(("Accept-Encoding", encoding))
    return out


def _origin_encoding(policy: KeyPolicy, request_headers: Headers) -> str:
    """Accept-Encoding toward the origin ("": none) [DG controlling-the-cache-key, "Cache
    compressed objects"]: with Gzip or Brotli caching on, the normalised value, ``identity``
    when the viewer's accepts neither; with both off, a header like any other."""
    viewer = _first(request_headers, "accept-encoding")
    if viewer is None:
        return ""  # none sent (or removed: an HTTP/1.0 viewer's), none forwarded (7.9)
    if not policy.encodings:  # as the viewer sent it when a policy names it, else none
        return viewer if policy.origin_headers.selects("accept-encoding") else ""
    accepted = accepted_encodings(viewer)
    return ",".join(e for e in accepted.split(",") if e in policy.encodings) or "identity"
