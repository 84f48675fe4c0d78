"""The 2.0 origin helpers a viewer-request function called (``cf.updateRequestOrigin``,
``cf.selectRequestOriginById``, ``cf.createRequestOriginGroup``), applied in the order called
to the origins the miss would go to (DG helper-functions-origin-modification:
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/helper-functions-origin-modification.html).

Everything here comes from the function: checked once, here. A call CloudFront would refuse
(a bad parameter, an origin ID the distribution lacks) is ``OriginHelperError``: the runner
turns it into the call's execution error (503 FunctionExecutionError).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from edgeproxy.config.distribution import (
    FAILOVER_CODES,
    MAX_CUSTOM_HEADERS,
    REFUSED_CUSTOM_HEADER_PREFIXES,
    REFUSED_CUSTOM_HEADERS,
)
from edgeproxy.config.types import valid_origin_port
from edgeproxy.messages import (
    BAD_VALUE_CHAR,
    HEADER_NAME,
    Headers,
    OriginChain,
    OriginTarget,
    title_case,
)

# An origin ID → its chain for this viewer's scheme (an origin, or an origin group's two);
# None for an ID the distribution does not have.
OriginLookup = Callable[[str], OriginChain | None]

_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_SSL_PROTOCOLS = frozenset({"SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2"})
_MAX_PATH = 255
# DG helper-functions-origin-modification "timeouts": (low, high) seconds
_TIMEOUTS = {
    "readTimeout": ("read_timeout", 1, 60),
    "keepAliveTimeout": ("keepalive_timeout", 1, 60),
    "connectionTimeout": ("connection_timeout", 1, 10),
}
MAX_HELPER_CALLS = 16  # a bound on what one call may record; CloudFront states none


class OriginHelperError(ValueError):
    """An origin helper call CloudFront would refuse."""


def chosen_origins(calls: list[Any], current: OriginChain, lookup: OriginLookup) -> OriginChain:
    """``current`` after the recorded helper ``calls`` (``[kind, params]`` each, in order)."""
    if len(calls) > MAX_HELPER_CALLS:
        raise OriginHelperError(f"more than {MAX_HELPER_CALLS} origin helper calls")
    chain = current
    for call in calls:
        if not (isinstance(call, list) and len(call) == 2):
            raise OriginHelperError("malformed origin helper call")
        kind, params = call
        if kind == "update":
            chain = _updated(chain, params)
        elif kind == "select":
            chain = _selected(params, lookup)
        elif kind == "group":
            chain = _group(params, lookup)
        else:
            raise OriginHelperError(f"unknown origin helper {kind!r}")
    return chain


# --- selectRequestOriginById / createRequestOriginGroup ----------------------------------------


def _selected(origin_id: Any, lookup: OriginLookup) -> OriginChain:
    """An origin (or origin group) of the distribution, with all its own settings."""
    if not isinstance(origin_id, str) or not origin_id:
        raise OriginHelperError("selectRequestOriginById takes an origin ID (a string)")
    found = lookup(origin_id)
    if found is None:
        raise OriginHelperError(f"selectRequestOriginById: no origin {origin_id!r}")
    return found


def _group(params: Any, lookup: OriginLookup) -> OriginChain:
    """Two origins of the distribution as an origin group: ``{originIds: [a, b],
    failoverCriteria: {statusCodes: [...]}}``; an entry may be ``{originId: a}`` too."""
    params = _object(params, "createRequestOriginGroup")
    ids = params.get("originIds")
    if not isinstance(ids, list) or len(ids) != 2:
        raise OriginHelperError("createRequestOriginGroup: originIds takes two origin IDs")
    members = []
    for entry in ids:
        origin_id = entry.get("originId") if isinstance(entry, dict) else entry
        if not isinstance(origin_id, str) or not origin_id:
            raise OriginHelperError("createRequestOriginGroup: an origin ID must be a string")
        found = lookup(origin_id)
        if found is None or len(found.targets) != 1:
            raise OriginHelperError(f"createRequestOriginGroup: no origin {origin_id!r}")
        members.append(found.targets[0])
    criteria = _object(params.get("failoverCriteria"), "failoverCriteria")
    codes = criteria.get("statusCodes")
    if (
        not isinstance(codes, list)
        or not codes
        or not all(isinstance(c, int) and c in FAILOVER_CODES for c in codes)
    ):
        listed = ", ".join(map(str, sorted(FAILOVER_CODES)))
        raise OriginHelperError(f"failoverCriteria.statusCodes must be some of {listed}")
    return OriginChain(tuple(members), frozenset(codes))


# --- updateRequestOrigin -----------------------------------------------------------------------


def _updated(chain: OriginChain, params: Any) -> OriginChain:
    """The primary origin with the given settings; what is not given is inherited from it.
    In an origin group only the primary changes (DG)."""
    params = _object(params, "updateRequestOrigin")
    primary = _update(chain.targets[0], params)
    return replace(chain, targets=(primary, *chain.targets[1:]))


def _update(target: OriginTarget, params: dict[str, Any]) -> OriginTarget:
    changes: dict[str, Any] = {}
    if "domainName" in params:
        changes["domain_name"] = _domain(params["domainName"])
    if "originPath" in params:
        changes["path"] = _path(params["originPath"])
    if "customHeaders" in params:
        changes["custom_headers"] = _custom_headers(params["customHeaders"])
    if "connectionAttempts" in params:
        changes["connection_attempts"] = _number(params["connectionAttempts"], 1, 3, "attempts")
    if "timeouts" in params:
        for key, value in _object(params["timeouts"], "timeouts").items():
            if key not in _TIMEOUTS:
                raise OriginHelperError(f"timeouts.{key} is not a timeout CloudFront knows")
            field, low, high = _TIMEOUTS[key]
            changes[field] = float(_number(value, low, high, f"timeouts.{key}"))
    if "customOriginConfig" in params:
        changes |= _custom_config(params["customOriginConfig"])
    # originShield and originAccessControlConfig are taken as given and change nothing
    # locally: there is no regional tier to shield and nothing signs (docs/functions.md).
    for key in ("originShield", "originAccessControlConfig"):
        if key in params:
            _object(params[key], key)
    unknown = set(params) - _KNOWN_UPDATE_KEYS
    if unknown:
        raise OriginHelperError(f"updateRequestOrigin: unknown parameter {sorted(unknown)[0]}")
    return replace(target, **changes)


_KNOWN_UPDATE_KEYS = frozenset(
    {
        "domainName",
        "originPath",
        "customHeaders",
        "connectionAttempts",
        "timeouts",
        "customOriginConfig",
        "originShield",
        "originAccessControlConfig",
    }
)


def _custom_config(value: Any) -> dict[str, Any]:
    """``{port, protocol, sslProtocols}``: the origin becomes a custom one (an S3 bucket with
    website hosting is a custom origin too)."""
    config = _object(value, "customOriginConfig")
    changes: dict[str, Any] = {"kind": "custom", "s3_auth_method": "none", "s3_region": ""}
    if "port" in config:
        port = config["port"]
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if not isinstance(port, int) or isinstance(port, bool) or not valid_origin_port(port):
            raise OriginHelperError("customOriginConfig.port must be 80, 443 or 1024-65535")
        changes["port"] = port
    if "protocol" in config:
        if config["protocol"] not in ("http", "https"):
            raise OriginHelperError('customOriginConfig.protocol must be "http" or "https"')
        changes["protocol"] = config["protocol"]
    if "sslProtocols" in config:
        protocols = config["sslProtocols"]
        if not isinstance(protocols, list) or not protocols or not set(protocols) <= _SSL_PROTOCOLS:
            listed = ", ".join(sorted(_SSL_PROTOCOLS))
            raise OriginHelperError(f"customOriginConfig.sslProtocols must be some of {listed}")
        changes["ssl_protocols"] = tuple(protocols)
    return changes


def _domain(value: Any) -> str:
    if not isinstance(value, str) or not _DOMAIN.fullmatch(value):
        raise OriginHelperError("domainName must be a DNS name")
    return value.lower()


def _path(value: Any) -> str:
    """DG: starts with a slash, does not end with one, at most 255 characters."""
    if value == "":
        return ""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or value.endswith("/")
        or len(value) > _MAX_PATH
        or BAD_VALUE_CHAR.search(value)
        or " " in value
    ):
        raise OriginHelperError("originPath must start with / and not end with one (255 at most)")
    return value


def _custom_headers(value: Any) -> Headers:
    """``{"name": "value"}``, names lower-case; sent capitalised (DG). ``{}`` removes the
    origin's own custom headers."""
    headers = _object(value, "customHeaders")
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise OriginHelperError(f"customHeaders: at most {MAX_CUSTOM_HEADERS} headers")
    pairs: Headers = []
    for name, text in headers.items():
        if not HEADER_NAME.fullmatch(name) or name != name.lower():
            raise OriginHelperError(f"customHeaders: {name!r} must be a lower-case header name")
        if name in REFUSED_CUSTOM_HEADERS or name.startswith(REFUSED_CUSTOM_HEADER_PREFIXES):
            raise OriginHelperError(f"customHeaders: CloudFront cannot add {name}")
        if not isinstance(text, str) or BAD_VALUE_CHAR.search(text):
            raise OriginHelperError(f"customHeaders.{name} must be a string")
        pairs.append((title_case(name), text))
    return pairs


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OriginHelperError(f"{what} takes an object")
    return value


def _number(value: Any, low: int, high: int, what: str) -> int | float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        raise OriginHelperError(f"{what} must be a number from {low} to {high}")
    return value
