"""Typed, frozen models of CloudFront's three policy resources, with Terraform's field names:
``aws_cloudfront_cache_policy``, ``aws_cloudfront_origin_request_policy`` and
``aws_cloudfront_response_headers_policy`` (AWS provider 5.x/6.x argument names).

They serve twice: a cache behavior may carry one of each inline (``cache_policy:``,
``origin_request_policy:``, ``response_headers_policy:``, a local extension: CloudFront
itself only takes policy IDs), and ``config/policies.py`` writes the managed policies with them, so
an inline policy and a managed one take the same road to the cache key and the headers.

CloudFront's rules for the values, as validators (each refused value names its key path):

* TTLs: ``min_ttl <= default_ttl <= max_ttl`` [DG cache-key-understand-cache-policy].
* ``whitelist``/``allExcept`` (and ``allViewerAndWhitelistCloudFront``) need items; ``none``
  and ``all`` take none [API CachePolicyHeadersConfig etc.: Items only with those behaviors].
* At most 10 headers, 10 cookies and 10 query strings per policy [DG cloudfront-limits,
  "per cache policy" and "per origin request policy" quotas]; origin request policy headers
  are not counted, since a managed one lists 21 CloudFront-* headers [inf].
* All TTLs 0 (caching disabled) leaves nothing to put in a key: key contents and compression
  are refused then [obs: troposphere pull 1796 notes CloudFormation rejects such a policy
  and the console hides those settings; inf].
* Response headers: ``Content-Security-Policy`` at most 1,783 characters; X-XSS-Protection
  takes ``mode_block`` or ``report_uri``, not both; a wildcard origin only as ``*`` or
  leftmost label ``*.example.org``; the headers CloudFront will not remove are refused in
  ``remove_headers_config`` [DG understanding-response-headers-policies]; sampling rate
  0-100 [same, Server-Timing].
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator, model_validator

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
from edgeproxy.messages import HEADER_NAME

DEFAULT_TTL = 86_400
MAX_TTL = 31_536_000
MAX_ITEMS = 10  # headers, cookies or query strings per policy (DG cloudfront-limits)
MAX_CSP_LENGTH = 1783

Behavior = Literal["none", "whitelist", "allExcept", "all"]
CacheHeaderBehavior = Literal["none", "whitelist"]
OriginHeaderBehavior = Literal[
    "none", "whitelist", "allViewer", "allViewerAndWhitelistCloudFront", "allExcept"
]
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

# Behaviors that name items, and those that must not (API *Config types).
_NAMING = frozenset({"whitelist", "allExcept", "allViewerAndWhitelistCloudFront"})

# Headers a response headers policy cannot remove (DG understanding-response-headers-policies).
UNREMOVABLE_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "expect",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        "warning",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
UNREMOVABLE_PREFIXES = ("x-amz-cf-", "x-edge-")


def _valid_cors_origin(origin: str) -> bool:
    """``*``, or an origin whose host has no ``*`` but as its whole leftmost label."""
    if origin == "*":
        return True
    host = origin.split("://", 1)[-1]
    if "*" not in host:
        return bool(host)
    rest = host.removeprefix("*.")
    return rest != host and "*" not in rest and "." in rest


class Items(FrozenModel):
    """Terraform's ``{ items = [...] }`` wrapper around a list of names."""

    items: tuple[str, ...] = ()


def _check_items(
    behavior: str, names: Items | None, field: str, limit: int | None = MAX_ITEMS
) -> None:
    count = len(names.items) if names is not None else 0
    if behavior in _NAMING and count == 0:
        raise invalid(f"list {field} items for {behavior}", at=(field,))
    if behavior not in _NAMING and count:
        raise invalid(f"takes no items with {behavior}", at=(field,))
    if limit is not None and count > limit:
        raise invalid(f"at most {limit} items per policy", at=(field,))


def _names(behavior: str, names: Items | None) -> tuple[str, ...]:
    return names.items if names is not None and behavior in _NAMING else ()


class CookiesConfig(FrozenModel):
    cookie_behavior: Behavior
    cookies: Items | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return _names(self.cookie_behavior, self.cookies)

    @model_validator(mode="after")
    def _items(self) -> CookiesConfig:
        _check_items(self.cookie_behavior, self.cookies, "cookies")
        return self


class QueryStringsConfig(FrozenModel):
    query_string_behavior: Behavior
    query_strings: Items | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return _names(self.query_string_behavior, self.query_strings)

    @model_validator(mode="after")
    def _items(self) -> QueryStringsConfig:
        _check_items(self.query_string_behavior, self.query_strings, "query_strings")
        return self


class CacheHeadersConfig(FrozenModel):
    header_behavior: CacheHeaderBehavior  # "all headers" is not allowed in a key (7.5)
    headers: Items | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return _names(self.header_behavior, self.headers)

    @model_validator(mode="after")
    def _items(self) -> CacheHeadersConfig:
        _check_items(self.header_behavior, self.headers, "headers")
        return self


class OriginHeadersConfig(FrozenModel):
    header_behavior: OriginHeaderBehavior
    headers: Items | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return _names(self.header_behavior, self.headers)

    @model_validator(mode="after")
    def _items(self) -> OriginHeadersConfig:
        # No count limit here: the managed AllViewerAndCloudFrontHeaders-2022-06 lists 21.
        _check_items(self.header_behavior, self.headers, "headers", limit=None)
        if self.header_behavior == "allViewerAndWhitelistCloudFront" and any(
            not n.lower().startswith("cloudfront-") for n in self.names
        ):
            raise invalid("lists only CloudFront-* headers", at=("headers",))
        return self


class CacheKeyParameters(FrozenModel):
    """``parameters_in_cache_key_and_forwarded_to_origin``: the key, also sent to the origin."""

    cookies_config: CookiesConfig
    headers_config: CacheHeadersConfig
    query_strings_config: QueryStringsConfig
    enable_accept_encoding_brotli: bool = False
    enable_accept_encoding_gzip: bool = False

    @property
    def encodings(self) -> tuple[str, ...]:
        """The normalised Accept-Encoding codings the key holds, in CloudFront's order."""
        flags = (
            ("br", self.enable_accept_encoding_brotli),
            ("gzip", self.enable_accept_encoding_gzip),
        )
        return tuple(name for name, on in flags if on)

    @property
    def empty(self) -> bool:
        return not self.encodings and all(
            b == "none"
            for b in (
                self.cookies_config.cookie_behavior,
                self.headers_config.header_behavior,
                self.query_strings_config.query_string_behavior,
            )
        )


class CachePolicyConfig(FrozenModel):
    """``aws_cloudfront_cache_policy``."""

    name: NonEmpty
    comment: str = ""
    min_ttl: Seconds = 0
    default_ttl: Seconds = DEFAULT_TTL
    max_ttl: Seconds = MAX_TTL
    parameters_in_cache_key_and_forwarded_to_origin: CacheKeyParameters

    @property
    def key(self) -> CacheKeyParameters:
        return self.parameters_in_cache_key_and_forwarded_to_origin

    @model_validator(mode="after")
    def _ttls(self) -> CachePolicyConfig:
        if self.default_ttl < self.min_ttl:
            raise invalid("must be at least min_ttl", at=("default_ttl",))
        if self.max_ttl < self.default_ttl:
            raise invalid("must be at least default_ttl", at=("max_ttl",))
        if self.max_ttl == 0 and not self.key.empty:
            raise invalid(
                "caching is disabled (all TTLs 0): the key can hold nothing, compression off",
                at=("parameters_in_cache_key_and_forwarded_to_origin",),
            )
        return self


class OriginRequestPolicyConfig(FrozenModel):
    """``aws_cloudfront_origin_request_policy``."""

    name: NonEmpty
    comment: str = ""
    cookies_config: CookiesConfig
    headers_config: OriginHeadersConfig
    query_strings_config: QueryStringsConfig


# --- response headers policy ------------------------------------------------------------


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
        if lname in UNREMOVABLE_HEADERS or lname.startswith(UNREMOVABLE_PREFIXES):
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
