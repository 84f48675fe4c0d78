"""The config: typed, frozen models of ``distribution:`` and ``edge:``, loaded once.

``distribution:`` is Terraform's ``aws_cloudfront_distribution`` in JSON form (field names are
Terraform's argument names); ``edge:`` holds what only a local edge needs. ``load_config``
reads a file in four steps, each finding every problem it can before the next runs:

1. read the YAML                      -> problems at ``<file>``
2. walk ``distribution:`` against ``tfschema``: unknown keys are problems, known keys the
   models do not implement are dropped (one warning names them all), and Terraform's two
   spellings of a block (``{...}`` or ``[{...}]``) become one
3. validate with pydantic; cross references (``target_origin_id``, ``lambda_arn``,
   ``demo_origin``) are checked by field validators that read the validation context, so
   they are reported even when another part of the file is broken
4. apply command-line overrides (``ConfigOverrides``) to the valid, frozen result

Every problem is ``(key path, message)``, e.g. ``distribution.origin[0].origin_id``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edgeproxy import tfschema
from edgeproxy.errors import ConfigError
from edgeproxy.stages import STAGE_RULES, Stage

# --- CloudFront's rules as tables (reference sections 5 and 7) --------------------------------

ALLOWED_METHOD_SETS: tuple[frozenset[str], ...] = (
    frozenset({"GET", "HEAD"}),
    frozenset({"GET", "HEAD", "OPTIONS"}),
    frozenset({"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}),
)
CACHED_METHOD_SETS: tuple[frozenset[str], ...] = ALLOWED_METHOD_SETS[:2]
METHOD_ORDER = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")

DEFAULT_TTL = 86_400
MAX_TTL = 31_536_000

ERROR_PAGE_CODES = frozenset({400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504})
ERROR_RESPONSE_CODES = ERROR_PAGE_CODES | {200}
FAILOVER_CODES = frozenset({400, 403, 404, 416, 500, 502, 503, 504})
MAX_CUSTOM_HEADERS = 10

# Managed policies by name (reference 7.5, 7.6). Only these can be served locally; a config
# may name one by name or by ID and the model keeps the ID, which is what cachekey/ttl read.
MANAGED_CACHE_POLICIES: Mapping[str, str] = MappingProxyType(
    {
        "CachingOptimized": "658327ea-f89d-4fab-a63d-7e88639e58f6",
        "CachingOptimizedForUncompressedObjects": "b2884449-e4de-46a7-ac36-70bc7f1ddd6d",
        "CachingDisabled": "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
        "Amplify": "2e54312d-136d-493c-8eb9-b001f22f67d2",
        "Elemental-MediaPackage": "08627262-05a9-4f76-9ded-b50ca2e3a84f",
        "UseOriginCacheControlHeaders": "83da9c7e-98b4-4e11-a168-04f0df8e2c65",
        "UseOriginCacheControlHeaders-QueryStrings": "4cc15a8a-d715-48a4-82b8-cc0b614638fe",
    }
)
MANAGED_ORIGIN_REQUEST_POLICIES: Mapping[str, str] = MappingProxyType(
    {
        "AllViewer": "216adef6-5c7f-47e4-b989-5492eafa07d3",
        "AllViewerAndCloudFrontHeaders-2022-06": "33f36d7e-f396-46d9-90e0-52428a34d9dc",
        "AllViewerExceptHostHeader": "b689b0a8-53d0-40ab-baf2-68738e2966ac",
        "CORS-CustomOrigin": "59781a5b-3903-41f3-afcb-af62929ccde1",
        "CORS-S3Origin": "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf",
        "UserAgentRefererHeaders": "acba4595-bd28-49b8-b9fe-13317c0390fa",
    }
)

INCLUDE_BODY_TEXT = (
    "The IncludeBody option can only be used with viewer-request or origin-request events."
)

Method = Literal["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
Isolation = Literal["thread", "process", "inline"]

# Path patterns: <= 255 chars of these (reference 7.1); '?' and '*' are the wildcards.
_PATH_PATTERN = re.compile(r"[A-Za-z0-9_\-.*?$/~\"'@:+&]{1,255}")
# Lambda@Edge takes a numbered version of a function in us-east-1, never $LATEST or an alias.
_LAMBDA_ARN = re.compile(r"arn:aws[a-z-]*:lambda:us-east-1:\d{12}:function:[\w-]{1,64}:\d+")
_HANDLER_FUNC = re.compile(r"[A-Za-z_]\w*")
_MODULE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_HEADER_SAFE = re.compile(r"[A-Za-z0-9._-]+")
_COUNTRY = re.compile(r"[A-Z]{2}")


# --- validators shared by the models --------------------------------------------------------


def _error(message: str, *, at: tuple[int | str, ...] = ()) -> PydanticCustomError:
    """A validation error; ``at`` extends the key path below the field that raised it."""
    return PydanticCustomError("edgeproxy", message, {"at": at} if at else None)


def _between(lo: float, hi: float) -> AfterValidator:
    def check(value: float) -> float:
        if not lo <= value <= hi:
            raise _error(f"must be between {lo:g} and {hi:g}")
        return value

    return AfterValidator(check)


def _at_least(lo: int) -> AfterValidator:
    def check(value: int) -> int:
        if value < lo:
            raise _error(f"must be {lo} or more")
        return value

    return AfterValidator(check)


def _non_empty(value: str) -> str:
    if not value:
        raise _error("must not be empty")
    return value


def _origin_port(value: int) -> int:
    if value not in (80, 443) and not 1024 <= value <= 65535:
        raise _error("must be 80, 443 or between 1024 and 65535")
    return value


def _handler_spec(value: str) -> str:
    target, _, func = value.rpartition(":")
    is_file = target.endswith(".py")
    if not (_HANDLER_FUNC.fullmatch(func) and (is_file or _MODULE.fullmatch(target))):
        raise _error('must be "path/file.py:function" or "package.module:function"')
    return value


def _lambda_arn(value: str) -> str:
    if not _LAMBDA_ARN.fullmatch(value):
        raise _error(
            "must be a numbered version of a Lambda function in us-east-1, "
            "e.g. arn:aws:lambda:us-east-1:123456789012:function:name:1"
        )
    return value


def _managed(policies: Mapping[str, str], kind: str) -> AfterValidator:
    """A managed policy named by name or ID, kept as its ID."""

    def check(value: str) -> str:
        if value in policies.values():
            return value
        if value not in policies:
            raise _error(f"must be a managed {kind} policy, by name or ID: {', '.join(policies)}")
        return policies[value]

    return AfterValidator(check)


def _ip_address(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise _error("must be an IP address") from None
    return value


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise _error("must be an IP network such as 203.0.113.0/24") from None
    return value


def _country(value: str) -> str:
    if not _COUNTRY.fullmatch(value):
        raise _error("must be a two-letter country code in capitals, e.g. US")
    return value


def _header_safe(value: str) -> str:
    if not _HEADER_SAFE.fullmatch(value):
        raise _error("may contain only letters, digits, '.', '_' and '-'")
    return value


NonEmpty = Annotated[str, AfterValidator(_non_empty)]
Port = Annotated[int, _between(0, 65535)]
OriginPort = Annotated[int, AfterValidator(_origin_port)]
Seconds = Annotated[int, _at_least(0)]
HandlerSpec = Annotated[str, AfterValidator(_handler_spec)]
LambdaArn = Annotated[str, AfterValidator(_lambda_arn)]
IpAddress = Annotated[str, AfterValidator(_ip_address)]
Country = Annotated[str, AfterValidator(_country)]
HeaderSafe = Annotated[str, AfterValidator(_header_safe)]


def _context(info: ValidationInfo) -> Mapping[str, Any]:
    """The load context (see ``_load_context``); empty when a model is built in code."""
    return info.context if isinstance(info.context, Mapping) else {}


def is_local_address(domain_name: str) -> bool:
    """An IP address or ``localhost``: CloudFront refuses these as origins; we allow them."""
    if domain_name.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(domain_name)
    except ValueError:
        return False
    return True


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- distribution: origins ----------------------------------------------------------------


class CustomHeader(_Model):
    name: NonEmpty
    value: str


class CustomOriginConfig(_Model):
    http_port: OriginPort = 80
    https_port: OriginPort = 443
    origin_protocol_policy: Literal["http-only", "https-only", "match-viewer"]
    origin_ssl_protocols: tuple[Literal["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2"], ...] = ("TLSv1.2",)
    origin_read_timeout: Annotated[int, _between(1, 120)] = 30
    origin_keepalive_timeout: Annotated[int, _between(1, 120)] = 5


class Origin(_Model):
    origin_id: NonEmpty
    domain_name: NonEmpty
    origin_path: str = ""
    custom_header: tuple[CustomHeader, ...] = ()
    custom_origin_config: CustomOriginConfig | None = None
    connection_attempts: Annotated[int, _between(1, 3)] = 3
    connection_timeout: Annotated[int, _between(1, 10)] = 10

    @field_validator("domain_name")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if is_local_address(value):
            return value
        if "/" in value or ":" in value:
            raise _error("must be a host name only (no scheme, port or path)")
        return value

    @field_validator("origin_path")
    @classmethod
    def _origin_path(cls, value: str) -> str:
        if value and (not value.startswith("/") or value.endswith("/")):
            raise _error("must start with / and not end with /, e.g. /production")
        return value

    @field_validator("custom_header")
    @classmethod
    def _header_count(cls, value: tuple[CustomHeader, ...]) -> tuple[CustomHeader, ...]:
        if len(value) > MAX_CUSTOM_HEADERS:
            raise _error(f"at most {MAX_CUSTOM_HEADERS} custom headers per origin")
        return value


class FailoverCriteria(_Model):
    status_codes: tuple[int, ...]

    @field_validator("status_codes")
    @classmethod
    def _codes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or not set(value) <= FAILOVER_CODES:
            raise _error(f"must be some of {', '.join(map(str, sorted(FAILOVER_CODES)))}")
        return value


class OriginGroupMember(_Model):
    origin_id: NonEmpty

    @field_validator("origin_id")
    @classmethod
    def _names_origin(cls, value: str, info: ValidationInfo) -> str:
        origins = _context(info).get("origin_ids")
        if origins and value not in origins:
            raise _error(f"names no origin (origins: {', '.join(sorted(origins))})")
        return value


class OriginGroup(_Model):
    origin_id: NonEmpty
    failover_criteria: FailoverCriteria
    member: tuple[OriginGroupMember, ...]

    @field_validator("member")
    @classmethod
    def _two_members(cls, value: tuple[OriginGroupMember, ...]) -> tuple[OriginGroupMember, ...]:
        # A length constraint would also fire, wrongly, when a member itself is invalid.
        if len(value) != 2:
            raise _error("takes exactly two members: the primary, then the secondary")
        return value


# --- distribution: cache behaviors ----------------------------------------------------------


class Cookies(_Model):
    forward: Literal["none", "all", "whitelist"] = "none"
    whitelisted_names: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _names_for_whitelist(self) -> Cookies:
        if self.forward == "whitelist" and not self.whitelisted_names:
            raise _error("required when forward is whitelist", at=("whitelisted_names",))
        return self


class ForwardedValues(_Model):
    query_string: bool = False
    query_string_cache_keys: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    cookies: Cookies = Cookies()


class LambdaFunctionAssociation(_Model):
    """A hook: a stage bound to a handler, named directly or through ``edge.functions``."""

    event_type: Stage
    handler: HandlerSpec | None = None
    lambda_arn: LambdaArn | None = None
    include_body: bool = False
    timeout: float | None = None  # seconds; None = the stage's limit (5 s viewer, 30 s origin)
    isolation: Isolation | None = None  # None = edge.handlers.isolation
    _spec: str = PrivateAttr(default="")

    @property
    def handler_spec(self) -> str:
        """``path/file.py:function`` or ``package.module:function``, lambda_arn resolved."""
        return self._spec or self.handler or ""

    @field_validator("lambda_arn")
    @classmethod
    def _known_arn(cls, value: str | None, info: ValidationInfo) -> str | None:
        functions = _context(info).get("functions")
        if value is not None and functions is not None and value not in functions:
            raise _error("no local handler for this ARN: map it under edge.functions")
        return value

    @field_validator("include_body")
    @classmethod
    def _body_on_request_stages(cls, value: bool, info: ValidationInfo) -> bool:
        stage = info.data.get("event_type")
        if value and stage is not None and not STAGE_RULES[stage].request_stage:
            raise _error(INCLUDE_BODY_TEXT)
        return value

    @field_validator("timeout")
    @classmethod
    def _within_stage_limit(cls, value: float | None, info: ValidationInfo) -> float | None:
        stage = info.data.get("event_type")
        if value is None or stage is None:
            return value
        limit = STAGE_RULES[stage].timeout_s
        if not 0 < value <= limit:
            raise _error(f"must be more than 0 and at most {limit:g} seconds for {stage}")
        return value

    @model_validator(mode="after")
    def _one_handler(self, info: ValidationInfo) -> LambdaFunctionAssociation:
        if (self.handler is None) == (self.lambda_arn is None):
            raise _error("set exactly one of handler or lambda_arn")
        if self.lambda_arn is not None:
            self._spec = _context(info).get("functions", {}).get(self.lambda_arn, "")
        return self


class CacheBehavior(_Model):
    """One cache behavior; the default behavior has path pattern ``*``."""

    path_pattern: str = "*"
    target_origin_id: NonEmpty
    viewer_protocol_policy: Literal["allow-all", "redirect-to-https", "https-only"]
    allowed_methods: tuple[Method, ...]
    cached_methods: tuple[Method, ...]
    min_ttl: Seconds = 0
    default_ttl: Seconds = DEFAULT_TTL  # defaults follow min_ttl, see _ttl_defaults
    max_ttl: Seconds = MAX_TTL
    compress: bool = False
    forwarded_values: ForwardedValues | None = None
    cache_policy_id: Annotated[str, _managed(MANAGED_CACHE_POLICIES, "cache")] | None = None
    origin_request_policy_id: (
        Annotated[str, _managed(MANAGED_ORIGIN_REQUEST_POLICIES, "origin request")] | None
    ) = None
    response_headers_policy_id: str | None = None
    lambda_function_association: tuple[LambdaFunctionAssociation, ...] = ()

    def association(self, stage: Stage) -> LambdaFunctionAssociation | None:
        """The hook for ``stage`` on this behavior, if any."""
        return next((a for a in self.lambda_function_association if a.event_type == stage), None)

    @model_validator(mode="before")
    @classmethod
    def _ttl_defaults(cls, data: Any) -> Any:
        """CloudFront's defaults (reference 7.4): Default follows a large Min, Max a large
        Default."""
        if not isinstance(data, Mapping) or not _is_int(data.get("min_ttl", 0)):
            return data
        data = dict(data)
        if data.get("default_ttl") is None:
            data["default_ttl"] = max(data.get("min_ttl", 0), DEFAULT_TTL)
        if data.get("max_ttl") is None and _is_int(data["default_ttl"]):
            data["max_ttl"] = max(data["default_ttl"], MAX_TTL)
        return data

    @field_validator("path_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if not _PATH_PATTERN.fullmatch(value):
            raise _error("must be 1-255 characters of A-Z a-z 0-9 _ - . * ? $ / ~ \" ' @ : + &")
        return value

    @field_validator("target_origin_id")
    @classmethod
    def _names_origin(cls, value: str, info: ValidationInfo) -> str:
        targets = _context(info).get("target_ids")
        if targets and value not in targets:
            raise _error(f"names no origin or origin group ({', '.join(sorted(targets))})")
        return value

    @field_validator("allowed_methods")
    @classmethod
    def _allowed_set(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _method_set(value, ALLOWED_METHOD_SETS)

    @field_validator("cached_methods")
    @classmethod
    def _cached_set(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        value = _method_set(value, CACHED_METHOD_SETS)
        if not set(value) <= set(info.data.get("allowed_methods", METHOD_ORDER)):
            raise _error("must be a subset of allowed_methods")
        return value

    @field_validator("default_ttl")
    @classmethod
    def _default_after_min(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("min_ttl", 0):
            raise _error("must be at least min_ttl")
        return value

    @field_validator("max_ttl")
    @classmethod
    def _max_after_default(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("default_ttl", 0):
            raise _error("must be at least default_ttl")
        return value

    @field_validator("lambda_function_association")
    @classmethod
    def _one_per_stage(
        cls, value: tuple[LambdaFunctionAssociation, ...]
    ) -> tuple[LambdaFunctionAssociation, ...]:
        seen: set[Stage] = set()
        for index, association in enumerate(value):
            if association.event_type in seen:
                raise _error(
                    f"a second {association.event_type} association (one per event_type)",
                    at=(index, "event_type"),
                )
            seen.add(association.event_type)
        return value

    @model_validator(mode="after")
    def _cache_key_source(self, info: ValidationInfo) -> CacheBehavior:
        if self.origin_request_policy_id is not None and self.cache_policy_id is None:
            # reference 7.6: an origin request policy works only beside a cache policy
            raise _error("needs cache_policy_id", at=("origin_request_policy_id",))
        # CloudFront needs exactly one way to build the cache key; checked when loading a
        # file, so code (and tests) may build bare behaviors.
        if _context(info) and (self.cache_policy_id is None) == (self.forwarded_values is None):
            raise _error("set exactly one of cache_policy_id or forwarded_values")
        return self


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _method_set(value: tuple[str, ...], sets: tuple[frozenset[str], ...]) -> tuple[str, ...]:
    if frozenset(value) not in sets or len(set(value)) != len(value):
        choices = " | ".join(",".join(m for m in METHOD_ORDER if m in s) for s in sets)
        raise _error(f"must be one of the sets {choices}")
    return tuple(m for m in METHOD_ORDER if m in value)  # one canonical order


# --- distribution: the rest -----------------------------------------------------------------


class CustomErrorResponse(_Model):
    error_code: int
    response_code: int | None = None
    response_page_path: str | None = None
    error_caching_min_ttl: Seconds = 10  # reference 7.11

    @field_validator("error_code")
    @classmethod
    def _error_code(cls, value: int) -> int:
        if value not in ERROR_PAGE_CODES:
            raise _error(f"must be one of {', '.join(map(str, sorted(ERROR_PAGE_CODES)))}")
        return value

    @field_validator("response_code")
    @classmethod
    def _response_code(cls, value: int | None) -> int | None:
        if value is not None and value not in ERROR_RESPONSE_CODES:
            codes = ", ".join(map(str, sorted(ERROR_RESPONSE_CODES)))
            raise _error(f"must be one of {codes}")
        return value

    @field_validator("response_page_path")
    @classmethod
    def _page_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise _error("must start with /")
        return value

    @model_validator(mode="after")
    def _page_and_code_together(self) -> CustomErrorResponse:
        if (self.response_code is None) != (self.response_page_path is None):
            raise _error("set both response_code and response_page_path, or neither")
        return self


class GeoRestriction(_Model):
    restriction_type: Literal["none", "whitelist", "blacklist"] = "none"
    locations: tuple[Country, ...] = ()

    @model_validator(mode="after")
    def _locations_match_type(self) -> GeoRestriction:
        if (self.restriction_type == "none") != (not self.locations):
            raise _error(
                "list countries for whitelist or blacklist, none for none", at=("locations",)
            )
        return self


class Restrictions(_Model):
    geo_restriction: GeoRestriction = GeoRestriction()


class ViewerCertificate(_Model):
    """Accepted for fidelity; the local HTTPS listener uses certificates from edge.tls."""

    acm_certificate_arn: str | None = None
    cloudfront_default_certificate: bool = False
    iam_certificate_id: str | None = None
    minimum_protocol_version: str = "TLSv1"
    ssl_support_method: Literal["sni-only", "vip", "static-ip"] | None = None

    @model_validator(mode="after")
    def _one_certificate(self) -> ViewerCertificate:
        chosen = [self.acm_certificate_arn, self.iam_certificate_id]
        if sum(x is not None for x in chosen) + self.cloudfront_default_certificate != 1:
            raise _error(
                "set exactly one of cloudfront_default_certificate, acm_certificate_arn "
                "or iam_certificate_id"
            )
        return self


class Distribution(_Model):
    origin: tuple[Origin, ...]
    default_cache_behavior: CacheBehavior
    ordered_cache_behavior: tuple[CacheBehavior, ...] = ()
    origin_group: tuple[OriginGroup, ...] = ()
    custom_error_response: tuple[CustomErrorResponse, ...] = ()
    default_root_object: str = ""
    aliases: tuple[str, ...] = ()
    comment: Annotated[str, Field(max_length=128)] = ""
    enabled: bool = True
    restrictions: Restrictions = Restrictions()
    viewer_certificate: ViewerCertificate = ViewerCertificate(cloudfront_default_certificate=True)

    @property
    def behaviors(self) -> tuple[CacheBehavior, ...]:
        """Ordered behaviors in precedence order, then the default behavior."""
        return (*self.ordered_cache_behavior, self.default_cache_behavior)

    def origin_by_id(self, origin_id: str) -> Origin:
        """The origin with ``origin_id``; KeyError if none (an origin group id, say)."""
        for origin in self.origin:
            if origin.origin_id == origin_id:
                return origin
        raise KeyError(origin_id)

    def target_origin(self, target_origin_id: str) -> Origin:
        """The origin a behavior's target names; for an origin group, its primary member."""
        for group in self.origin_group:
            if group.origin_id == target_origin_id:
                return self.origin_by_id(group.member[0].origin_id)
        return self.origin_by_id(target_origin_id)

    @field_validator("origin")
    @classmethod
    def _some_origins(cls, value: tuple[Origin, ...]) -> tuple[Origin, ...]:
        if not value:
            raise _error("needs at least one origin")
        return value

    @field_validator("origin", "origin_group")
    @classmethod
    def _unique_ids(cls, value: tuple[Origin | OriginGroup, ...]) -> tuple[Any, ...]:
        _first_duplicate(value, lambda item: item.origin_id, "origin_id")
        return value

    @field_validator("ordered_cache_behavior")
    @classmethod
    def _patterns(cls, value: tuple[CacheBehavior, ...]) -> tuple[CacheBehavior, ...]:
        for index, behavior in enumerate(value):
            if "path_pattern" not in behavior.model_fields_set:
                raise _error("required", at=(index, "path_pattern"))
        _first_duplicate(value, lambda item: item.path_pattern, "path_pattern")
        return value

    @field_validator("custom_error_response")
    @classmethod
    def _one_page_per_code(
        cls, value: tuple[CustomErrorResponse, ...]
    ) -> tuple[CustomErrorResponse, ...]:
        _first_duplicate(value, lambda item: item.error_code, "error_code")
        return value

    @field_validator("default_root_object")
    @classmethod
    def _root_object(cls, value: str) -> str:
        if value.startswith("/"):
            raise _error("must not start with / (write index.html, not /index.html)")
        return value


def _first_duplicate(items: Iterable[Any], key: Any, name: str) -> None:
    seen: set[Any] = set()
    for index, item in enumerate(items):
        if key(item) in seen:
            raise _error(f"{key(item)!r} appears twice", at=(index, name))
        seen.add(key(item))


# --- edge -----------------------------------------------------------------------------------


class Listeners(_Model):
    host: NonEmpty = "127.0.0.1"
    http_port: Port | None = None
    https_port: Port | None = None


class AdminListener(_Model):
    host: NonEmpty = "127.0.0.1"
    port: Port | None = None
    token: str | None = None


class CacheSettings(_Model):
    max_bytes: Seconds = 256 * 1024 * 1024
    max_object_bytes: Seconds = 64 * 1024 * 1024

    @field_validator("max_object_bytes")
    @classmethod
    def _fits(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("max_bytes", value):
            raise _error("must not exceed max_bytes")
        return value


class HandlerSettings(_Model):
    isolation: Isolation = "thread"


class GeoLocation(_Model):
    """What CloudFront's CloudFront-Viewer-* geo headers say about a viewer."""

    country: Country
    country_name: str | None = None
    region: str | None = None
    region_name: str | None = None
    city: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None
    latitude: Annotated[float, _between(-90, 90)] | None = None
    longitude: Annotated[float, _between(-180, 180)] | None = None
    metro_code: str | None = None
    asn: int | None = None


class GeoRange(GeoLocation):
    """Viewers whose address is in ``cidr`` are located here."""

    cidr: str

    @field_validator("cidr")
    @classmethod
    def _network(cls, value: str) -> str:
        return _cidr(value)


class GeoSettings(_Model):
    trust_viewer_headers: bool = False  # take viewer-sent CloudFront-Viewer-* as simulated
    default: GeoLocation | None = None
    ranges: tuple[GeoRange, ...] = ()


class TlsSettings(_Model):
    cert_dir: NonEmpty = ".edgeproxy/certs"


class DemoOrigin(_Model):
    """The built-in static origin that serves ``root`` for the origin ``origin_id``."""

    origin_id: NonEmpty
    root: NonEmpty
    host: NonEmpty = "127.0.0.1"
    port: Port = 0

    @field_validator("origin_id")
    @classmethod
    def _names_origin(cls, value: str, info: ValidationInfo) -> str:
        origins = _context(info).get("origin_ids")
        if origins and value not in origins:
            raise _error(f"names no origin (origins: {', '.join(sorted(origins))})")
        return value

    @field_validator("root")
    @classmethod
    def _folder_exists(cls, value: str, info: ValidationInfo) -> str:
        base_dir = _context(info).get("base_dir")
        if base_dir is not None and not (base_dir / value).is_dir():
            raise _error(f"no such folder: {base_dir / value}")
        return value


class EdgeSettings(_Model):
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


class Config(_Model):
    distribution: Distribution
    edge: EdgeSettings = EdgeSettings()
    base_dir: Path = Path(".")  # the folder of the config file; relative paths start here

    def path(self, relative: str) -> Path:
        """A path named in the config (handler file, demo root, cert dir), made absolute."""
        return self.base_dir / relative


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    config: Config
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ConfigOverrides:
    """Command-line settings that win over the file."""

    host: str | None = None
    http_port: int | None = None
    https_port: int | None = None
    origin_url: str | None = None  # --origin URL: serve this origin instead of the demo one


# --- loading --------------------------------------------------------------------------------

_TOP_LEVEL = frozenset({"distribution", "edge"})


def load_config(path: Path, *, overrides: ConfigOverrides | None = None) -> LoadedConfig:
    """Read, check and freeze a config file; ConfigError lists every problem found."""
    raw = _read_yaml(path)
    findings = tfschema.Findings()
    document = _prepare_document(raw, findings)
    base_dir = path.resolve().parent
    config = _validate(document, base_dir, findings.problems)
    warnings = _warnings(config, findings.ignored)
    if overrides is not None:
        config = apply_overrides(config, overrides)
    return LoadedConfig(config=config, warnings=warnings)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that notes duplicated keys, which plain YAML loading silently collapses."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[str, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                line = key_node.start_mark.line + 1
                self.duplicates.append(("<file>", f"line {line}: key {key!r} given twice"))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([("<file>", f"cannot read {path}: {exc.strerror or exc}")]) from exc
    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([("<file>", f"not valid YAML{where}: {problem}")]) from exc
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(loader.duplicates)
    return data


def _prepare_document(raw: Any, findings: tfschema.Findings) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError([("<file>", "must be a mapping with distribution: and edge:")])
    for key in raw.keys() - _TOP_LEVEL:
        findings.problems.append((tfschema.key_path((str(key),)), "unknown key"))
    # `edge:` with every line commented out reads as null: the same as no edge section.
    document = {key: raw[key] for key in _TOP_LEVEL if raw.get(key) is not None}
    if "distribution" in document:
        document["distribution"] = tfschema.prepare(
            document["distribution"],
            tfschema.DISTRIBUTION,
            Distribution,
            ("distribution",),
            findings,
        )
    return document


def _load_context(document: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """What cross-reference validators need, read from the raw document before validation."""
    distribution = document.get("distribution")
    distribution = distribution if isinstance(distribution, dict) else {}
    edge = document.get("edge")
    edge = edge if isinstance(edge, dict) else {}
    origin_ids = _ids(distribution.get("origin"))
    functions = edge.get("functions")
    return {
        "origin_ids": origin_ids,
        "target_ids": origin_ids | _ids(distribution.get("origin_group")),
        "functions": functions if isinstance(functions, dict) else {},
        "base_dir": base_dir,
    }


def _ids(blocks: Any) -> frozenset[str]:
    if not isinstance(blocks, list):
        return frozenset()
    return frozenset(
        b["origin_id"]
        for b in blocks
        if isinstance(b, dict) and isinstance(b.get("origin_id"), str)
    )


def _validate(document: dict[str, Any], base_dir: Path, problems: list[tuple[str, str]]) -> Config:
    context = _load_context(document, base_dir)
    try:
        config = Config.model_validate({**document, "base_dir": base_dir}, context=context)
    except ValidationError as exc:
        problems = problems + _translate(exc)
    if problems:
        raise ConfigError(_unique(problems))
    return config


def _unique(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(problems))


def _warnings(config: Config, ignored: list[str]) -> list[str]:
    warnings = []
    if ignored:
        warnings.append("not implemented locally, ignored: " + ", ".join(ignored))
    demo = config.edge.demo_origin
    for index, origin in enumerate(config.distribution.origin):
        # The demo origin is local by design; any other local origin deserves a note.
        if is_local_address(origin.domain_name) and not (
            demo and demo.origin_id == origin.origin_id
        ):
            warnings.append(
                f"distribution.origin[{index}].domain_name: {origin.domain_name} is an IP "
                "address or localhost; CloudFront would refuse it, edgeproxy allows it"
            )
    return warnings


# --- pydantic errors -> (key path, message) --------------------------------------------------

_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "missing": "required",
        "extra_forbidden": "unknown key",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be a string",
        "model_type": "must be a mapping of keys",
        "model_attributes_type": "must be a mapping of keys",
        "dict_type": "must be a mapping of keys",
        "tuple_type": "must be a list",
        "list_type": "must be a list",
        "too_short": "needs at least {min_length}",
        "too_long": "takes at most {max_length}",
        "string_too_long": "must be at most {max_length} characters",
        "greater_than_equal": "must be {ge} or more",
        "less_than_equal": "must be {le} or less",
    }
)


def _translate(exc: ValidationError) -> list[tuple[str, str]]:
    return [_problem(error) for error in exc.errors(include_url=False, include_input=False)]


def _problem(error: Any) -> tuple[str, str]:
    ctx = error.get("ctx") or {}
    loc = (*error["loc"], *ctx.get("at", ()))
    template = _MESSAGES.get(error["type"])
    message = template.format(**ctx) if template else _plain(error["msg"])
    return tfschema.key_path(loc), message


def _plain(message: str) -> str:
    return message.removeprefix("Value error, ").replace("Input should be", "must be")


# --- overrides ------------------------------------------------------------------------------


def apply_overrides(config: Config, overrides: ConfigOverrides) -> Config:
    """The config with command-line settings applied; ConfigError names the bad flag."""
    config = _override_listeners(config, overrides)
    if overrides.origin_url is not None:
        config = _override_origin(config, overrides.origin_url)
    return config


def _override_listeners(config: Config, overrides: ConfigOverrides) -> Config:
    changes: dict[str, Any] = {}
    if overrides.host is not None:
        changes["host"] = overrides.host
    for flag, name in (("--http-port", "http_port"), ("--https-port", "https_port")):
        port = getattr(overrides, name)
        if port is not None:
            if not 0 <= port <= 65535:
                raise ConfigError([(flag, "must be between 0 and 65535")])
            changes[name] = port
    if not changes:
        return config
    listeners = config.edge.listeners.model_copy(update=changes)
    return config.model_copy(
        update={"edge": config.edge.model_copy(update={"listeners": listeners})}
    )


def _override_origin(config: Config, origin_url: str) -> Config:
    """Point the demo origin (or the default behavior's origin) at ``origin_url``."""
    url = urlsplit(origin_url)
    try:
        port = url.port
    except ValueError:
        port = -1
    if url.scheme not in ("http", "https") or not url.hostname or port == -1:
        raise ConfigError([("--origin", "must be an http:// or https:// URL with a host")])
    distribution = config.distribution
    origin_id = _overridden_origin_id(config)
    origins = tuple(
        _retarget(o, url.scheme, url.hostname, port, url.path) if o.origin_id == origin_id else o
        for o in distribution.origin
    )
    return config.model_copy(
        update={
            "distribution": distribution.model_copy(update={"origin": origins}),
            "edge": config.edge.model_copy(update={"demo_origin": None}),
        }
    )


def _overridden_origin_id(config: Config) -> str:
    if config.edge.demo_origin is not None:
        return config.edge.demo_origin.origin_id
    dist = config.distribution
    return dist.target_origin(dist.default_cache_behavior.target_origin_id).origin_id


def _retarget(origin: Origin, scheme: str, host: str, port: int | None, path: str) -> Origin:
    custom = origin.custom_origin_config or CustomOriginConfig(origin_protocol_policy="http-only")
    port_key = "http_port" if scheme == "http" else "https_port"
    custom = custom.model_copy(
        update={
            "origin_protocol_policy": f"{scheme}-only",
            port_key: port or (80 if scheme == "http" else 443),
        }
    )
    update: dict[str, Any] = {"domain_name": host, "custom_origin_config": custom}
    if path.strip("/"):
        update["origin_path"] = "/" + path.strip("/")
    return origin.model_copy(update=update)
