"""A typed, frozen model of ``aws_cloudfront_response_headers_policy`` (AWS provider 5.x/6.x
argument names), inline under a cache behavior or written by ``config/policies.py`` for the
managed ones; ``viewer/response_headers.py`` applies it.

CloudFront's rules for the values, as validators (each refused value names its key path):
``Content-Security-Policy`` at most 1,783 characters; X-XSS-Protection takes ``mode_block``
or ``report_uri``, not both; a wildcard origin only as ``*`` or leftmost label
``*.example.org``; the headers CloudFront will not remove are refused in
``remove_headers_config`` [DG understanding-response-headers-policies]; sampling rate 0-100
[same, Server-Timing].
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator

from edgeproxy.config.policy_models import Items
from edgeproxy.config.types import (
    NOT_A_HEADER_NAME,
    FrozenModel,
    HeaderName,
    HeaderValue,
    NonEmpty,
    Seconds,
    between,
    invalid,
)
from edgeproxy.functions.header_map import is_disallowed_header
from edgeproxy.messages import HEADER_NAME

MAX_CSP_LENGTH = 1783

CorsMethod = Literal["GET", "DELETE", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "ALL"]
ReferrerPolicyValue = Literal[
    "no-referrer",
    "no-referrer-when-downgrade",
    "origin",
    "origin-when-cross-origin",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
    "unsafe-url",
]

# Headers a response headers policy cannot remove (DG understanding-response-headers-policies):
# the ones Lambda@Edge may not touch either (reference 4.1), and these.
UNREMOVABLE_HEADERS = frozenset(
    {"content-encoding", "content-length", "host", "transfer-encoding", "via", "warning"}
)


def _valid_cors_origin(origin: str) -> bool:
    """``*``, or an origin whose host has no ``*`` but as its whole leftmost label."""
    if origin == "*":
        return True
    host = origin.split("://", 1)[-1]
    if "*" not in host:
        return bool(host)
    rest = host.removeprefix("*.")
    return rest != host and "*" not in rest and "." in rest


class CorsConfig(FrozenModel):
    access_control_allow_credentials: bool
    access_control_allow_headers: Items
    access_control_allow_methods: Items
    access_control_allow_origins: Items
    access_control_expose_headers: Items | None = None
    access_control_max_age_sec: Seconds | None = None
    origin_override: bool

    @field_validator("access_control_allow_methods")
    @classmethod
    def _methods(cls, value: Items) -> Items:
        allowed = get_args(CorsMethod)
        for index, method in enumerate(value.items):
            if method not in allowed:
                raise invalid(f"must be one of {', '.join(allowed)}", at=("items", index))
        return value

    @field_validator("access_control_allow_headers", "access_control_expose_headers")
    @classmethod
    def _header_names(cls, value: Items | None) -> Items | None:
        for index, name in enumerate(value.items if value is not None else ()):
            if name != "*" and not HEADER_NAME.fullmatch(name):
                raise invalid(NOT_A_HEADER_NAME, at=("items", index))
        return value

    @field_validator("access_control_allow_origins")
    @classmethod
    def _origins(cls, value: Items) -> Items:
        for index, origin in enumerate(value.items):
            if not _valid_cors_origin(origin):
                raise invalid(
                    "must be *, an origin, or one whose leftmost label is * (*.example.org)",
                    at=("items", index),
                )
        return value


class ContentSecurityPolicy(FrozenModel):
    content_security_policy: Annotated[HeaderValue, Field(max_length=MAX_CSP_LENGTH)]
    override: bool


class ContentTypeOptions(FrozenModel):
    override: bool


class FrameOptions(FrozenModel):
    frame_option: Literal["DENY", "SAMEORIGIN"]
    override: bool


class ReferrerPolicy(FrozenModel):
    referrer_policy: ReferrerPolicyValue
    override: bool


class StrictTransportSecurity(FrozenModel):
    access_control_max_age_sec: Seconds
    include_subdomains: bool = False
    preload: bool = False
    override: bool


class XssProtection(FrozenModel):
    protection: bool
    mode_block: bool = False
    report_uri: HeaderValue | None = None
    override: bool

    @model_validator(mode="after")
    def _block_or_report(self) -> XssProtection:
        if self.mode_block and self.report_uri:
            raise invalid("set mode_block or report_uri, not both", at=("report_uri",))
        return self


class SecurityHeadersConfig(FrozenModel):
    content_security_policy: ContentSecurityPolicy | None = None
    content_type_options: ContentTypeOptions | None = None
    frame_options: FrameOptions | None = None
    referrer_policy: ReferrerPolicy | None = None
    strict_transport_security: StrictTransportSecurity | None = None
    xss_protection: XssProtection | None = None


class CustomHeaderItem(FrozenModel):
    header: HeaderName
    value: HeaderValue = ""  # CloudFront may add a header with no value (DG)
    override: bool


class CustomHeadersConfig(FrozenModel):
    items: tuple[CustomHeaderItem, ...] = ()


class RemoveHeaderItem(FrozenModel):
    header: HeaderName

    @field_validator("header")
    @classmethod
    def _removable(cls, value: str) -> str:
        lname = value.lower()
        if lname in UNREMOVABLE_HEADERS or is_disallowed_header(lname):
            raise invalid(f"CloudFront does not let a policy remove {value}")
        return value


class RemoveHeadersConfig(FrozenModel):
    items: tuple[RemoveHeaderItem, ...] = ()


class ServerTimingHeadersConfig(FrozenModel):
    enabled: bool
    sampling_rate: Annotated[float, between(0, 100)] = 0.0


class ResponseHeadersPolicyConfig(FrozenModel):
    """``aws_cloudfront_response_headers_policy``."""

    name: NonEmpty
    comment: str = ""
    cors_config: CorsConfig | None = None
    custom_headers_config: CustomHeadersConfig | None = None
    remove_headers_config: RemoveHeadersConfig | None = None
    security_headers_config: SecurityHeadersConfig | None = None
    server_timing_headers_config: ServerTimingHeadersConfig | None = None
