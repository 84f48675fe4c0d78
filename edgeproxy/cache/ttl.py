"""How long CloudFront keeps an origin response: its TTL rules as data (reference 7.4, 7.11).

Theory of operation
-------------------
``freshness(policy, status, headers, now)`` decides, for one response the origin (or an
origin-side handler) produced, whether it is stored and for how long. ``ttl_for`` is the
same answer reduced to the TTL. Nothing here stores anything; ``cache/store.py`` does.

1. The status picks a rule from ``STATUS_RULES`` (unknown statuses are never stored):

   ``STANDARD``   2xx/3xx objects. Reference 7.4: ``no-store``/``no-cache``/``private`` →
                  not stored with Min TTL 0, stored for Min TTL otherwise; a lifetime
                  (``s-maxage`` > ``max-age`` > ``Expires``) is clamped into [Min, Max];
                  no lifetime → max(Min, Default).
   ``ERROR``      404, 410, 414, 500-504 (7.11 "cached always"): stored for
                  max(error caching min TTL, lifetime capped by Max TTL).
   ``ERROR_IF_MAX_AGE`` 400, 403, 405, 412, 415: stored like ``ERROR`` but only when the origin
                  sent ``max-age`` or ``s-maxage`` (``Expires`` alone does not count).
   ``NEVER``      416, 304 and anything not in the table.

2. ``no-store``/``no-cache``/``private`` on an error response: honoured (not stored) for
   404, 410, 414, 501; ignored for the other errors, which then get the error TTL (7.11).

Choices where the reference is silent or unsure (each marked in the table or code):

* 410 is cached like 404 (reference 10 #14).
* 204 is cached like 200: RFC 9111 lists it as heuristically cacheable and nothing in the
  CloudFront docs excludes it. 201, 202, 205 are not stored (not responses to a GET).
* Every 3xx but 304 is STANDARD: CloudFront caches and passes on redirects (7.11); a 304 is
  an answer to our own revalidation, never an object.
* The behaviour's Min TTL does not raise an error's TTL; the error caching min TTL (default
  10 s, per status from ``custom_error_response``) stands in for it, as 7.11 states.
* A lifetime of 0 (``max-age=0``, an ``Expires`` in the past) gives ``ttl == 0.0``: stored but
  stale at once, so every use revalidates (CloudFront answers ``RefreshHit`` for such objects).
  ``Vary: *`` with Min TTL 0 does the same (7.4 step 6).
* Max TTL 0 (e.g. managed CachingDisabled, legacy "forward all headers") disables caching of
  STANDARD responses outright (7.4 step 7). Error responses keep their error TTL: CloudFront
  caches origin errors for the error caching min TTL even with caching disabled [inf].
* ``no-cache="Set-Cookie"`` (a ``no-cache`` with field names) does not make the object
  uncacheable: it only says those headers must not be replayed (7.7); ``private="Set-Cookie"``
  likewise (RFC 9111 5.2.2.7: a shared cache stores the answer without the named fields).
  ``uncached_fields`` names them; ``misses.py`` stores the object without them.
* An unparsable ``max-age``/``s-maxage`` counts as 0 and an unparsable ``Expires`` as "in the
  past", which is RFC 9111's advice.

``Freshness`` also carries ``stale-while-revalidate`` and ``stale-if-error`` (RFC 5861,
supported by CloudFront since 2023); the cache/pipeline decides how to use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from edgeproxy.cache.httpdate import parse_http_date
from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.distribution import CustomErrorResponse
from edgeproxy.messages import Header, decimal_value

# CloudFront's defaults for a behaviour (reference 7.4) and for error caching (7.11).
DEFAULT_MIN_TTL = 0
DEFAULT_DEFAULT_TTL = 86_400
DEFAULT_MAX_TTL = 31_536_000
DEFAULT_ERROR_CACHING_MIN_TTL = 10
# max-age range accepted by CloudFront: 0 s ... 100 years (7.4 step 5).
MAX_LIFETIME = 100 * 365 * 86_400


class StatusRule(Enum):
    STANDARD = "standard"  # reference 7.4 rules
    ERROR = "error"  # always stored, error caching min TTL
    ERROR_IF_MAX_AGE = "error-if-max-age"  # stored only with max-age / s-maxage
    NEVER = "never"


_S, _E, _EM = StatusRule.STANDARD, StatusRule.ERROR, StatusRule.ERROR_IF_MAX_AGE

# Which origin statuses may be stored, and under which rule. Absent → NEVER.
STATUS_RULES: Mapping[int, StatusRule] = {
    200: _S,
    203: _S,
    204: _S,  # choice: RFC 9111 heuristically cacheable; not excluded by CloudFront docs
    206: _S,  # 7.10: partial responses are cached
    300: _S,
    301: _S,
    302: _S,  # 7.11: origin 3xx are cached and passed through
    303: _S,
    307: _S,
    308: _S,
    400: _EM,
    403: _EM,
    404: _E,
    405: _EM,
    410: _E,  # choice: like 404 (reference 10 #14)
    412: _EM,
    414: _E,
    415: _EM,
    416: StatusRule.NEVER,  # 7.10 / 7.11: never cached
    500: _E,
    501: _E,
    502: _E,
    503: _E,
    504: _E,
}

# Error statuses for which no-store / no-cache / private are honoured (7.11).
ERRORS_HONOURING_NO_STORE = frozenset({404, 410, 414, 501})

# Directives that keep an object out of the cache when Min TTL is 0 (7.4 step 1).
_UNCACHEABLE_DIRECTIVES = ("no-store", "no-cache", "private")


@dataclass(frozen=True, slots=True)
class TtlPolicy:
    """A behaviour's Min/Default/Max TTL plus the distribution's error caching min TTLs."""

    min_ttl: int = DEFAULT_MIN_TTL
    default_ttl: int = DEFAULT_DEFAULT_TTL
    max_ttl: int = DEFAULT_MAX_TTL
    # status → error caching min TTL (``custom_error_response.error_caching_min_ttl``)
    error_caching_min_ttl: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def from_behavior(
        cls, behavior: CacheBehavior, custom_error_responses: Iterable[CustomErrorResponse] = ()
    ) -> TtlPolicy:
        """A behavior's TTLs plus the distribution's error caching min TTLs.

        A cache policy (managed ``cache_policy_id`` or inline ``cache_policy``) brings its own
        TTLs (the behaviour's are then unused by CloudFront); legacy "forward all headers"
        means nothing is cached (reference 7.5).
        """
        errors = {r.error_code: r.error_caching_min_ttl for r in custom_error_responses}
        cache_policy = behavior.policies().cache
        if cache_policy is not None:
            return cls(cache_policy.min_ttl, cache_policy.default_ttl, cache_policy.max_ttl, errors)
        forwarded = behavior.forwarded_values
        if forwarded is not None and "*" in forwarded.headers:
            return cls(0, 0, 0, errors)
        return cls(behavior.min_ttl, behavior.default_ttl, behavior.max_ttl, errors)

    @property
    def caching_disabled(self) -> bool:
        """True for an all-zero policy: no caching, no compression, no collapsing (7.4.7)."""
        return self.max_ttl <= 0

    def error_min_ttl(self, status: int) -> int:
        return self.error_caching_min_ttl.get(status, DEFAULT_ERROR_CACHING_MIN_TTL)


@dataclass(frozen=True, slots=True)
class Freshness:
    """How long a stored response stays fresh, and how long it may be used stale.

    ``ttl`` seconds of freshness (0.0: stored but revalidated on every use);
    ``stale_while_revalidate`` seconds after expiry during which the stale object may be
    served while a refresh runs in the background (0 when absent);
    ``stale_if_error`` seconds after expiry during which it may be served when the origin
    fails, or None when the origin did not say (the pipeline then applies CloudFront's
    default: serve stale for the error caching min TTL; 0 disables that, reference 7.4).
    """

    ttl: float
    stale_while_revalidate: float = 0.0
    stale_if_error: float | None = None


CacheControl = dict[str, str | None]


# One directive: a name, optionally "=" and a token or a quoted string (which may hold commas).
_DIRECTIVE = re.compile(r'\s*([^\s,=]+)\s*(?:=\s*("[^"]*"|[^,]*))?\s*(?:,|$)')


def parse_cache_control(value: str) -> CacheControl:
    """``Cache-Control`` as ``{directive (lower-case): argument or None}``; first one wins."""
    directives: CacheControl = {}
    for match in _DIRECTIVE.finditer(value):
        name, arg = match.group(1).lower(), match.group(2)
        if name not in directives:
            directives[name] = None if arg is None else arg.strip().strip('"')
    return directives


def _cache_control(headers: Iterable[Header]) -> CacheControl:
    values = [v for k, v in headers if k.lower() == "cache-control"]
    return parse_cache_control(",".join(values)) if values else {}


def _header(headers: Iterable[Header], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _seconds(arg: str | None) -> float:
    """A delta-seconds argument; malformed (``+60``, ``1e3``, ``²``) counts as 0 (RFC 9111
    4.2.1), any larger number as 100 years (RFC 9111 1.2.2: huge means huge)."""
    return float(decimal_value(arg or "", MAX_LIFETIME) or 0)


def _expires_lifetime(value: str, headers: Iterable[Header], now: float) -> float:
    """Expires minus the origin's Date (or now without one), RFC 9111 4.2.1."""
    expires = parse_http_date(value)
    if expires is None:
        return 0.0  # an invalid date means "already expired" (RFC 9111 5.3)
    date = _header(headers, "date")
    base = parse_http_date(date) if date is not None else None
    return float(min(max(expires - (now if base is None else base), 0.0), MAX_LIFETIME))


def origin_lifetime(cc: CacheControl, headers: Iterable[Header], now: float) -> float | None:
    """The origin's own lifetime: ``s-maxage`` > ``max-age`` > ``Expires``; None if absent."""
    for directive in ("s-maxage", "max-age"):
        if directive in cc:
            return _seconds(cc[directive])
    expires = _header(headers, "expires")
    return None if expires is None else _expires_lifetime(expires, headers, now)


def _is_uncacheable(cc: CacheControl) -> bool:
    # ``no-cache="Set-Cookie"`` / ``private="Set-Cookie"`` name fields, they do not forbid
    # storing (7.7).
    return "no-store" in cc or _unqualified(cc, "private") or _unqualified(cc, "no-cache")


def _unqualified(cc: CacheControl, directive: str) -> bool:
    return directive in cc and not cc[directive]


def _standard_ttl(policy: TtlPolicy, cc: CacheControl, lifetime: float | None) -> float | None:
    if policy.caching_disabled:
        return None
    if _is_uncacheable(cc):
        return float(policy.min_ttl) if policy.min_ttl > 0 else None
    if lifetime is None:
        return float(max(policy.min_ttl, policy.default_ttl))
    return min(max(lifetime, float(policy.min_ttl)), float(policy.max_ttl))


def _error_ttl(
    policy: TtlPolicy, status: int, cc: CacheControl, lifetime: float | None
) -> float | None:
    if status in ERRORS_HONOURING_NO_STORE and _is_uncacheable(cc):
        return None
    capped = 0.0 if lifetime is None else min(lifetime, float(policy.max_ttl))
    return max(float(policy.error_min_ttl(status)), capped)


def _ttl(policy: TtlPolicy, status: int, cc: CacheControl, lifetime: float | None) -> float | None:
    rule = STATUS_RULES.get(status, StatusRule.NEVER)
    if rule is StatusRule.STANDARD:
        return _standard_ttl(policy, cc, lifetime)
    if rule is StatusRule.ERROR:
        return _error_ttl(policy, status, cc, lifetime)
    if rule is StatusRule.ERROR_IF_MAX_AGE and ("max-age" in cc or "s-maxage" in cc):
        return _error_ttl(policy, status, cc, lifetime)
    return None


def _vary_star(headers: Iterable[Header]) -> bool:
    vary = _header(headers, "vary")
    return vary is not None and "*" in vary


def freshness(
    policy: TtlPolicy, status: int, headers: Iterable[Header], now: float
) -> Freshness | None:
    """Whether and how long to store a response (None: do not store). See module docstring."""
    headers = list(headers)
    cc = _cache_control(headers)
    ttl = _ttl(policy, status, cc, origin_lifetime(cc, headers, now))
    if ttl is None:
        return None
    if policy.min_ttl == 0 and _vary_star(headers):
        ttl = 0.0  # 7.4 step 6: stored, but every request goes to the origin
    swr = _seconds(cc["stale-while-revalidate"]) if "stale-while-revalidate" in cc else 0.0
    sie = _seconds(cc["stale-if-error"]) if "stale-if-error" in cc else None
    return Freshness(ttl, swr, sie)


def ttl_for(policy: TtlPolicy, status: int, headers: Iterable[Header], now: float) -> float | None:
    """Seconds a response stays fresh in the cache, or None when it must not be stored."""
    fresh = freshness(policy, status, headers, now)
    return None if fresh is None else fresh.ttl


def uncached_fields(headers: Iterable[Header]) -> frozenset[str]:
    """Lower-case header names in ``no-cache="..."`` and ``private="..."``: the viewer that
    fetched the answer gets them, the stored object does not hold them (e.g. Set-Cookie)."""
    cc = _cache_control(headers)
    args = [cc.get("no-cache") or "", cc.get("private") or ""]
    return frozenset(n.strip().lower() for arg in args for n in arg.split(",") if n.strip())
