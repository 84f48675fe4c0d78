"""The ``origin`` object an origin-request handler returns (reference 2.6): the rules for
``custom`` and ``s3`` origins, field by field, as tables. They judge only what the handler
wrote: a field left as the edge sent it passes even when CloudFront would never have sent it
(a local demo origin on an IP address and any port)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from edgeproxy.functions.origin_object import origin_object
from edgeproxy.functions.validation_rules import is_int
from edgeproxy.functions.validation_subject import PREFIX, Subject

_URL_PATH = re.compile(r"[A-Za-z0-9\-._~%/!$&'()*+,;=:@]*")


# Origin fields: (required, check, what a valid value is). Reference 2.6.
def _domain_custom(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= 253 and ":" not in v and not _is_ip(v)


def _is_ip(value: str) -> bool:
    # IPv6 already fails the ':' test; only digits and dots can be IPv4 (and parsing is slow).
    if not value.replace(".", "").isdigit():
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _path(limit: int) -> Callable[[Any], bool]:
    def ok(v: Any) -> bool:
        if not isinstance(v, str) or len(v) > limit:
            return False
        return v == "" or (
            v.startswith("/") and not v.endswith("/") and bool(_URL_PATH.fullmatch(v))
        )

    return ok


_SSL_PROTOCOLS = ("TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3")


def _ssl_protocols(v: Any) -> bool:
    return isinstance(v, list) and all(p in _SSL_PROTOCOLS for p in v)


OriginField = tuple[bool, Callable[[Any], bool], str]
_CUSTOM_ORIGIN: dict[str, OriginField] = {
    "domainName": (True, _domain_custom, "a host name of 1 to 253 characters, not an IP address"),
    "port": (
        True,
        lambda v: is_int(v) and (v in (80, 443) or 1024 <= v <= 65535),
        "80, 443 or 1024-65535",
    ),
    "protocol": (True, lambda v: v in ("http", "https"), "http or https"),
    "path": (False, _path(255), "'' or a URL-encoded path starting with '/', no trailing '/'"),
    "keepaliveTimeout": (False, lambda v: is_int(v) and 1 <= v <= 60, "an integer 1-60"),
    "readTimeout": (False, lambda v: is_int(v) and 4 <= v <= 60, "an integer 4-60"),
    "sslProtocols": (False, _ssl_protocols, "a list of TLSv1.2, TLSv1.1, TLSv1, SSLv3"),
}
_S3_ORIGIN: dict[str, OriginField] = {
    "domainName": (
        True,
        lambda v: isinstance(v, str) and 0 < len(v) <= 128 and v == v.lower(),
        "a lower-case bucket domain of at most 128 characters",
    ),
    "path": (False, _path(255), "'' or a path starting with '/', no trailing '/'"),
    "authMethod": (
        False,
        lambda v: v in ("origin-access-identity", "none"),
        "origin-access-identity or none",
    ),
    "region": (False, lambda v: isinstance(v, str) and v != "", "a region name"),
}


def origin_valid(s: Subject) -> str | None:
    if "origin" not in s.result:
        return None
    origin = s.result["origin"]
    kinds = [k for k in ("custom", "s3") if isinstance(origin, dict) and k in origin]
    if len(kinds) != 1 or not isinstance(origin[kinds[0]], dict):
        return f"{PREFIX}the origin object must hold exactly one of custom or s3, as an object"
    kind, spec = kinds[0], origin[kinds[0]]
    # The rules are for values a function writes: what the edge sent may be a local origin
    # (an IP address, any port) that CloudFront itself would never have.
    sent = _sent_origin(s).get(kind, {})
    if spec == sent:
        return None
    fields = _CUSTOM_ORIGIN if kind == "custom" else _S3_ORIGIN
    return _origin_fields(kind, spec, sent, fields) or _origin_extra(kind, spec, sent, s)


def _sent_origin(s: Subject) -> dict[str, Any]:
    if s.request is None or s.request.origin is None:
        return {}
    return origin_object(s.request.origin)


def _origin_fields(
    kind: str, spec: dict[str, Any], sent: dict[str, Any], fields: dict[str, OriginField]
) -> str | None:
    for name, (required, ok, expected) in fields.items():
        if name not in spec:
            if required:
                return f"{PREFIX}origin.{kind}.{name} is required"
            continue
        if name in sent and spec[name] == sent[name]:
            continue
        if not ok(spec[name]):
            return f"{PREFIX}origin.{kind}.{name} must be {expected}, not {spec[name]!r}"
    return None


def _origin_extra(kind: str, spec: dict[str, Any], sent: dict[str, Any], s: Subject) -> str | None:
    if (
        kind == "s3"
        and spec.get("authMethod") == "origin-access-identity"
        and not spec.get("region")
    ):
        return f"{PREFIX}origin.s3.region is required with authMethod origin-access-identity"
    custom_headers = spec.get("customHeaders") or {}
    if custom_headers == sent.get("customHeaders", {}):
        return None
    request_names = set(s.returned_values())
    for name in custom_headers:
        if name.lower() in request_names:
            return (
                f"{PREFIX}origin.{kind}.customHeaders names {name.lower()}, which is also "
                "in the request headers"
            )
    return None
