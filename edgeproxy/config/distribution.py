"""The ``distribution:`` section: typed, frozen models of Terraform's
``aws_cloudfront_distribution`` (field names are Terraform's argument names), with
CloudFront's rules for each value as tables and validators (reference sections 5 and 7).
Cache behaviors live in ``behaviors``, the policy blocks in ``policy_models`` and
``response_headers_policy``.

Cross references (``target_origin_id``, ``lambda_arn``, origin group members) are checked by
validators that read the load context (``loading._load_context``); a model built in code
without that context skips them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator, model_validator

from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.types import (
    Country,
    FrozenModel,
    HeaderName,
    HeaderValue,
    NonEmpty,
    OriginPort,
    Seconds,
    between,
    invalid,
    is_local_address,
    one_of_loaded,
)

ERROR_PAGE_CODES = frozenset({400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504})
ERROR_RESPONSE_CODES = ERROR_PAGE_CODES | {200}
FAILOVER_CODES = frozenset({400, 403, 404, 416, 500, 502, 503, 504})
MAX_CUSTOM_HEADERS = 10
# Origin custom headers CloudFront refuses to add [DG add-origin-custom-headers]: the ones
# it writes itself or that change the request's meaning (X-Amz-Cf-Id included, so the
# origin always gets the edge's own request id).
REFUSED_CUSTOM_HEADERS = frozenset(
    {
        "cache-control",
        "connection",
        "content-length",
        "cookie",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "max-forwards",
        "pragma",
        "proxy-authorization",
        "proxy-connection",
        "range",
        "request-range",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        "x-real-ip",
    }
)
REFUSED_CUSTOM_HEADER_PREFIXES = ("x-amz-", "x-edge-")

# --- distribution: origins ----------------------------------------------------------------


class CustomHeader(FrozenModel):
    name: HeaderName
    value: HeaderValue

    @field_validator("name")
    @classmethod
    def _addable(cls, value: str) -> str:
        lname = value.lower()
        if lname in REFUSED_CUSTOM_HEADERS or lname.startswith(REFUSED_CUSTOM_HEADER_PREFIXES):
            raise invalid(f"is a header CloudFront cannot add to origin requests: {value}")
        return value


class CustomOriginConfig(FrozenModel):
    http_port: OriginPort = 80
    https_port: OriginPort = 443
    origin_protocol_policy: Literal["http-only", "https-only", "match-viewer"]
    origin_ssl_protocols: tuple[Literal["SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2"], ...] = ("TLSv1.2",)
    origin_read_timeout: Annotated[int, between(1, 120)] = 30
    origin_keepalive_timeout: Annotated[int, between(1, 120)] = 5


class S3OriginConfig(FrozenModel):
    # Terraform's ``cloudfront_access_identity_path``
    # ("origin-access-identity/cloudfront/E127EXAMPLE51Z"); "" for none (beside OAC).
    origin_access_identity: str = ""


class OriginShield(FrozenModel):
    """Terraform's ``origin_shield { enabled, origin_shield_region }`` [API OriginShield]:
    "When it's enabled, CloudFront routes all requests through Origin Shield"; the Region is
    required then, a region code matching ``[a-z]{2}-[a-z]+-\\d``. Locally the regional tier
    (``edge.regional_cache``) is the one shared tier in front of every origin, so it is the
    shield too; without one, a warning at start (config/loading.py)."""

    enabled: bool
    origin_shield_region: (
        Annotated[str, StringConstraints(pattern=r"^[a-z]{2}-[a-z]+-\d$")] | None
    ) = None

    @model_validator(mode="after")
    def _region_when_enabled(self) -> OriginShield:
        if self.enabled and self.origin_shield_region is None:
            raise invalid(
                "required when enabled (the AWS Region, e.g. us-east-2)",
                at=("origin_shield_region",),
            )
        return self


class Origin(FrozenModel):
    """An origin: custom (``custom_origin_config``) or S3-style (anything else)."""

    origin_id: NonEmpty
    domain_name: NonEmpty
    origin_path: str = ""
    custom_header: tuple[CustomHeader, ...] = ()
    custom_origin_config: CustomOriginConfig | None = None
    s3_origin_config: S3OriginConfig | None = None
    # Origin access control signs S3 requests with SigV4; kept, not simulated (the local
    # origin is not S3); the event shows it as authMethod "origin-access-identity".
    origin_access_control_id: str | None = None
    connection_attempts: Annotated[int, between(1, 3)] = 3
    connection_timeout: Annotated[int, between(1, 10)] = 10
    origin_shield: OriginShield | None = None

    @model_validator(mode="after")
    def _custom_or_s3(self) -> Origin:
        # CloudFront's Origin takes S3OriginConfig or CustomOriginConfig, not both [API Origin].
        if self.custom_origin_config is not None and self.s3_origin_config is not None:
            raise invalid(
                "set custom_origin_config or s3_origin_config, not both", at=("s3_origin_config",)
            )
        return self

    @field_validator("domain_name")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if is_local_address(value):
            return value
        if "/" in value or ":" in value:
            raise invalid("must be a host name only (no scheme, port or path)")
        return value

    @field_validator("origin_path")
    @classmethod
    def _origin_path(cls, value: str) -> str:
        if value and (not value.startswith("/") or value.endswith("/")):
            raise invalid("must start with / and not end with /, e.g. /production")
        return value

    @field_validator("custom_header")
    @classmethod
    def _header_count(cls, value: tuple[CustomHeader, ...]) -> tuple[CustomHeader, ...]:
        if len(value) > MAX_CUSTOM_HEADERS:
            raise invalid(f"at most {MAX_CUSTOM_HEADERS} custom headers per origin")
        return value


class FailoverCriteria(FrozenModel):
    status_codes: tuple[int, ...]

    @field_validator("status_codes")
    @classmethod
    def _codes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or not set(value) <= FAILOVER_CODES:
            raise invalid(f"must be some of {', '.join(map(str, sorted(FAILOVER_CODES)))}")
        return value


class OriginGroupMember(FrozenModel):
    origin_id: NonEmpty

    @field_validator("origin_id")
    @classmethod
    def _names_origin(cls, value: str, info: ValidationInfo) -> str:
        return one_of_loaded(value, info, "origin_ids", "origin")


class OriginGroup(FrozenModel):
    origin_id: NonEmpty
    failover_criteria: FailoverCriteria
    member: tuple[OriginGroupMember, ...]

    @field_validator("member")
    @classmethod
    def _two_members(cls, value: tuple[OriginGroupMember, ...]) -> tuple[OriginGroupMember, ...]:
        # A length constraint would also fire, wrongly, when a member itself is invalid.
        if len(value) != 2:
            raise invalid("takes exactly two members: the primary, then the secondary")
        return value


# --- distribution: the rest -----------------------------------------------------------------


class CustomErrorResponse(FrozenModel):
    error_code: int
    response_code: int | None = None
    response_page_path: str | None = None
    error_caching_min_ttl: Seconds = 10  # reference 7.11

    @field_validator("error_code")
    @classmethod
    def _error_code(cls, value: int) -> int:
        if value not in ERROR_PAGE_CODES:
            raise invalid(f"must be one of {', '.join(map(str, sorted(ERROR_PAGE_CODES)))}")
        return value

    @field_validator("response_code")
    @classmethod
    def _response_code(cls, value: int | None) -> int | None:
        if value is not None and value not in ERROR_RESPONSE_CODES:
            codes = ", ".join(map(str, sorted(ERROR_RESPONSE_CODES)))
            raise invalid(f"must be one of {codes}")
        return value

    @field_validator("response_page_path")
    @classmethod
    def _page_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise invalid("must start with /")
        return value

    @model_validator(mode="after")
    def _page_and_code_together(self) -> CustomErrorResponse:
        if (self.response_code is None) != (self.response_page_path is None):
            raise invalid("set both response_code and response_page_path, or neither")
        return self


class GeoRestriction(FrozenModel):
    restriction_type: Literal["none", "whitelist", "blacklist"] = "none"
    locations: tuple[Country, ...] = ()

    @model_validator(mode="after")
    def _locations_match_type(self) -> GeoRestriction:
        if (self.restriction_type == "none") != (not self.locations):
            raise invalid(
                "list countries for whitelist or blacklist, none for none", at=("locations",)
            )
        return self


class Restrictions(FrozenModel):
    geo_restriction: GeoRestriction = GeoRestriction()


class ViewerCertificate(FrozenModel):
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
            raise invalid(
                "set exactly one of cloudfront_default_certificate, acm_certificate_arn "
                "or iam_certificate_id"
            )
        return self


class Distribution(FrozenModel):
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
            raise invalid("needs at least one origin")
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
                raise invalid("required", at=(index, "path_pattern"))
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
            raise invalid("must not start with / (write index.html, not /index.html)")
        return value


def _first_duplicate(items: Iterable[Any], key: Any, name: str) -> None:
    seen: set[Any] = set()
    for index, item in enumerate(items):
        if key(item) in seen:
            raise invalid(f"{key(item)!r} appears twice", at=(index, name))
        seen.add(key(item))
