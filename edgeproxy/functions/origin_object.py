"""An origin event's ``origin`` object ⇄ the edge's ``OriginTarget`` (reference 2.6):
``custom``, or ``s3`` for an S3-style origin (fetched over HTTPS on 443 from its domain)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from edgeproxy.functions.header_map import headers_from_map, headers_map
from edgeproxy.messages import OriginTarget

Json = dict[str, Any]


def _number(value: float) -> int | float:
    # CloudFront writes whole seconds as JSON integers.
    return int(value) if value == int(value) else value


def origin_object(origin: OriginTarget) -> Json:
    """The ``origin`` object of an origin event."""
    if origin.kind == "s3":
        return {
            "s3": {
                "authMethod": origin.s3_auth_method,
                "customHeaders": headers_map(origin.custom_headers),
                "domainName": origin.domain_name,
                "path": origin.path,
                "region": origin.s3_region,
            }
        }
    return {
        "custom": {
            "customHeaders": headers_map(origin.custom_headers),
            "domainName": origin.domain_name,
            "keepaliveTimeout": _number(origin.keepalive_timeout),
            "path": origin.path,
            "port": origin.port,
            "protocol": origin.protocol,
            "readTimeout": _number(origin.read_timeout),
            "sslProtocols": list(origin.ssl_protocols),
        }
    }


def origin_from_result(origin: Any, previous: OriginTarget | None) -> OriginTarget | None:
    """The ``origin`` a handler returned (validated), as an OriginTarget.

    Only the origin changes: the Host header stays as it was (reference 2.6), so a handler
    that switches origin sets ``host`` itself, as every AWS example does."""
    if not isinstance(origin, dict):
        return previous
    base = previous or OriginTarget(domain_name="", port=443, protocol="https")
    if isinstance(origin.get("custom"), dict):
        return _custom_origin(origin["custom"], base)
    s3 = origin.get("s3")
    if isinstance(s3, dict):
        return replace(
            base,
            domain_name=s3["domainName"],
            port=443,
            protocol="https",
            path=s3.get("path", ""),
            custom_headers=headers_from_map(s3.get("customHeaders") or {}),
            kind="s3",
            s3_auth_method=s3.get("authMethod", "none"),
            s3_region=s3.get("region", ""),
        )
    return previous


def _custom_origin(custom: Json, base: OriginTarget) -> OriginTarget:
    return replace(
        base,
        domain_name=custom["domainName"],
        port=int(custom.get("port", base.port)),
        protocol=custom.get("protocol", base.protocol),
        path=custom.get("path", base.path),
        custom_headers=headers_from_map(custom.get("customHeaders") or {}),
        read_timeout=float(custom.get("readTimeout", base.read_timeout)),
        keepalive_timeout=float(custom.get("keepaliveTimeout", base.keepalive_timeout)),
        ssl_protocols=tuple(custom.get("sslProtocols", base.ssl_protocols)),
        kind="custom",
        s3_auth_method="none",
        s3_region="",
    )
