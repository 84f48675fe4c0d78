"""The ``edge:`` section: what only a local edge location needs (listeners, admin API,
PoP name, cache size, handler isolation, geo simulation, TLS, the demo origin).

CloudFront has no equivalent of these keys, so they are plain edgeproxy names; the reference
for each is DESIGN section 3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from .config_types import (
    Country,
    FrozenModel,
    HandlerSpec,
    HeaderSafe,
    IpAddress,
    Isolation,
    LambdaArn,
    NonEmpty,
    Port,
    Seconds,
    between,
    cidr,
    context_of,
    invalid,
)


class Listeners(FrozenModel):
    host: NonEmpty = "127.0.0.1"
    http_port: Port | None = None
    https_port: Port | None = None


class AdminListener(FrozenModel):
    host: NonEmpty = "127.0.0.1"
    port: Port | None = None
    token: str | None = None


class CacheSettings(FrozenModel):
    max_bytes: Seconds = 256 * 1024 * 1024
    max_object_bytes: Seconds = 64 * 1024 * 1024

    @field_validator("max_object_bytes")
    @classmethod
    def _fits(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("max_bytes", value):
            raise invalid("must not exceed max_bytes")
        return value


class HandlerSettings(FrozenModel):
    isolation: Isolation = "thread"


class GeoLocation(FrozenModel):
    """What CloudFront's CloudFront-Viewer-* geo headers say about a viewer."""

    country: Country
    country_name: str | None = None
    region: str | None = None
    region_name: str | None = None
    city: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None
    latitude: Annotated[float, between(-90, 90)] | None = None
    longitude: Annotated[float, between(-180, 180)] | None = None
    metro_code: str | None = None
    asn: int | None = None


class GeoRange(GeoLocation):
    """Viewers whose address is in ``cidr`` are located here."""

    cidr: str

    @field_validator("cidr")
    @classmethod
    def _network(cls, value: str) -> str:
        return cidr(value)


class GeoSettings(FrozenModel):
    trust_viewer_headers: bool = False  # take viewer-sent CloudFront-Viewer-* as simulated
    default: GeoLocation | None = None
    ranges: tuple[GeoRange, ...] = ()


class TlsSettings(FrozenModel):
    cert_dir: NonEmpty = ".edgeproxy/certs"


class DemoOrigin(FrozenModel):
    """The built-in static origin that serves ``root`` for the origin ``origin_id``."""

    origin_id: NonEmpty
    root: NonEmpty
    host: NonEmpty = "127.0.0.1"
    port: Port = 0

    @field_validator("origin_id")
    @classmethod
    def _names_origin(cls, value: str, info: ValidationInfo) -> str:
        origins = context_of(info).get("origin_ids")
        if origins and value not in origins:
            raise invalid(f"names no origin (origins: {', '.join(sorted(origins))})")
        return value

    @field_validator("root")
    @classmethod
    def _folder_exists(cls, value: str, info: ValidationInfo) -> str:
        base_dir = context_of(info).get("base_dir")
        if base_dir is not None and not (base_dir / value).is_dir():
            raise invalid(f"no such folder: {base_dir / value}")
        return value


class EdgeSettings(FrozenModel):
    listeners: Listeners = Listeners()
    admin: AdminListener = AdminListener()
    pop: HeaderSafe = "LHR50-C1"
    distribution_domain_name: HeaderSafe = "d111111abcdef8.cloudfront.net"
    distribution_id: HeaderSafe = "EDFDVBD6EXAMPLE"
    resolve: Mapping[str, IpAddress] = Field(default_factory=dict)
    cache: CacheSettings = CacheSettings()
    handlers: HandlerSettings = HandlerSettings()
    functions: Mapping[LambdaArn, HandlerSpec] = Field(default_factory=dict)
    geo: GeoSettings = GeoSettings()
    tls: TlsSettings = TlsSettings()
    demo_origin: DemoOrigin | None = None
