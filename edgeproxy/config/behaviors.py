"""A cache behavior (``default_cache_behavior`` / ``ordered_cache_behavior``): typed, frozen,
with Terraform's argument names and CloudFront's rules (reference 7.1-7.7).

Its cache key comes from exactly one of: legacy ``forwarded_values``, a managed
``cache_policy_id`` (by ID or name, kept as the ID), or an inline ``cache_policy`` block with
the fields of ``aws_cloudfront_cache_policy`` (a local extension: CloudFront only takes IDs).
Likewise ``origin_request_policy_id`` / ``origin_request_policy`` (only beside a cache
policy, reference 7.6) and ``response_headers_policy_id`` / ``response_headers_policy``.
``CacheBehavior.policies`` turns these into the policies the edge applies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edgeproxy.config.policies import (
    MANAGED,
    MANAGED_CACHE_POLICIES,
    MANAGED_ORIGIN_REQUEST_POLICIES,
    MANAGED_RESPONSE_HEADERS_POLICIES,
    BehaviorPolicies,
    chosen_policy,
    managed_id,
)
from edgeproxy.config.policy_models import (
    DEFAULT_TTL,
    MAX_TTL,
    CachePolicyConfig,
    OriginRequestPolicyConfig,
)
from edgeproxy.config.response_headers_policy import ResponseHeadersPolicyConfig
from edgeproxy.config.types import (
    CloudFrontFunctionArn,
    FrozenModel,
    FunctionRuntime,
    HandlerSpec,
    Isolation,
    LambdaArn,
    Method,
    NonEmpty,
    Seconds,
    check_function_source,
    context_of,
    function_for,
    invalid,
    one_of_loaded,
)
from edgeproxy.stages import Stage, may_include_body, timeout_limit

ALLOWED_METHOD_SETS: tuple[frozenset[str], ...] = (
    frozenset({"GET", "HEAD"}),
    frozenset({"GET", "HEAD", "OPTIONS"}),
    frozenset({"GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"}),
)
CACHED_METHOD_SETS: tuple[frozenset[str], ...] = ALLOWED_METHOD_SETS[:2]
METHOD_ORDER = ("GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")

INCLUDE_BODY_TEXT = (
    "The IncludeBody option can only be used with viewer-request or origin-request events."
)

# Path patterns: <= 255 chars of these (reference 7.1); '?' and '*' are the wildcards.
_PATH_PATTERN = re.compile(r"[A-Za-z0-9_\-.*?$/~\"'@:+&]{1,255}")


def _managed(kind: str) -> AfterValidator:
    """A managed ``kind`` policy named by name or ID, kept as its ID (``config/policies.py``)."""

    def check(value: str) -> str:
        policy_id = managed_id(kind, value)
        if policy_id is None:
            names = ", ".join(p.name for p in MANAGED[kind][0].values())
            raise invalid(f"must be a managed {kind} policy, by name or ID: {names}")
        return policy_id

    return AfterValidator(check)


CachePolicyId = Annotated[str, _managed("cache")]
OriginRequestPolicyId = Annotated[str, _managed("origin request")]
ResponseHeadersPolicyId = Annotated[str, _managed("response headers")]


class Cookies(FrozenModel):
    forward: Literal["none", "all", "whitelist"] = "none"
    whitelisted_names: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _names_for_whitelist(self) -> Cookies:
        if self.forward == "whitelist" and not self.whitelisted_names:
            raise invalid("required when forward is whitelist", at=("whitelisted_names",))
        return self


class ForwardedValues(FrozenModel):
    query_string: bool = False
    query_string_cache_keys: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    cookies: Cookies = Cookies()


class LambdaFunctionAssociation(FrozenModel):
    """A hook: a stage bound to a handler, named directly or through ``edge.functions``.

    ``handler`` is a file spec (``path/file.py:function``), a module spec
    (``package.module:function``) or Lambda's form (``index.handler``) with ``code``, the
    function's folder relative to the config's folder."""

    event_type: Stage
    handler: HandlerSpec | None = None
    code: NonEmpty | None = None  # the function's folder, for Lambda's handler form
    lambda_arn: LambdaArn | None = None
    include_body: bool = False
    timeout: float | None = None  # seconds; None = the stage's limit (5 s viewer, 30 s origin)
    isolation: Isolation | None = None  # None = edge.handlers.isolation
    # nodejs18.x|20.x|22.x or python3.9..3.13; None: by the file (a .js file: nodejs20.x)
    runtime: FunctionRuntime | None = None
    _spec: str = PrivateAttr(default="")
    _code: str | None = PrivateAttr(default=None)
    _runtime: str | None = PrivateAttr(default=None)

    @property
    def handler_spec(self) -> str:
        """The handler as written (here or in ``edge.functions``, lambda_arn resolved)."""
        return self._spec or self.handler or ""

    @property
    def handler_code(self) -> str | None:
        """The function's folder for Lambda's handler form: here or in ``edge.functions``."""
        return self.code or self._code

    @property
    def handler_runtime(self) -> str | None:
        """The runtime named here, else in the function's ``edge.functions`` entry."""
        return self.runtime or self._runtime

    @field_validator("lambda_arn")
    @classmethod
    def _known_arn(cls, value: str | None, info: ValidationInfo) -> str | None:
        functions = context_of(info).get("functions")
        if value is not None and functions is not None and function_for(functions, value) is None:
            raise invalid("no local handler for this ARN: map it under edge.functions")
        return value

    @field_validator("include_body")
    @classmethod
    def _body_on_request_stages(cls, value: bool, info: ValidationInfo) -> bool:
        stage = info.data.get("event_type")
        if value and stage is not None and not may_include_body(stage):
            raise invalid(INCLUDE_BODY_TEXT)
        return value

    @field_validator("timeout")
    @classmethod
    def _within_stage_limit(cls, value: float | None, info: ValidationInfo) -> float | None:
        stage = info.data.get("event_type")
        if value is None or stage is None:
            return value
        limit = timeout_limit(stage)
        if not 0 < value <= limit:
            raise invalid(f"must be more than 0 and at most {limit:g} seconds for {stage}")
        return value

    @model_validator(mode="after")
    def _one_handler(self, info: ValidationInfo) -> LambdaFunctionAssociation:
        if (self.handler is None) == (self.lambda_arn is None):
            raise invalid("set exactly one of handler or lambda_arn")
        if self.lambda_arn is not None and self.code is not None:
            raise invalid(
                "goes with handler; for lambda_arn, set code in its edge.functions entry",
                at=("code",),
            )
        check_function_source(self.handler, self.code, self.runtime, info)
        if self.lambda_arn is not None:
            entry = function_for(context_of(info).get("functions", {}), self.lambda_arn)
            self._spec, self._code, self._runtime = function_entry(entry)
        return self


# CloudFront Functions run only at the viewer stages (DG cloudfront-functions).
FunctionStage = Literal["viewer-request", "viewer-response"]


class FunctionAssociation(FrozenModel):
    """Terraform's ``function_association``: a viewer stage bound to a CloudFront Function,
    whose code ``edge.functions`` maps to a local file."""

    event_type: FunctionStage
    function_arn: CloudFrontFunctionArn

    @field_validator("function_arn")
    @classmethod
    def _known_arn(cls, value: str, info: ValidationInfo) -> str:
        functions = context_of(info).get("functions")
        if functions is not None and value not in functions:
            raise invalid("no local file for this CloudFront Function: map it under edge.functions")
        return value


def function_entry(entry: object) -> tuple[str, str | None, str | None]:
    """An ``edge.functions`` value as the document holds it (a spec, or a mapping of handler,
    code and runtime) → (spec, code, runtime); what is not a string is left out here and
    reported where ``edge.functions`` is validated."""
    if isinstance(entry, str):
        return entry, None, None
    if not isinstance(entry, Mapping):
        return "", None, None

    def text(key: str) -> str | None:
        value = entry.get(key)
        return value if isinstance(value, str) else None

    return text("handler") or "", text("code"), text("runtime")


class CacheBehavior(FrozenModel):
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
    cache_policy_id: CachePolicyId | None = None
    origin_request_policy_id: OriginRequestPolicyId | None = None
    response_headers_policy_id: ResponseHeadersPolicyId | None = None
    cache_policy: CachePolicyConfig | None = None  # local extension, see module docstring
    origin_request_policy: OriginRequestPolicyConfig | None = None
    response_headers_policy: ResponseHeadersPolicyConfig | None = None
    lambda_function_association: tuple[LambdaFunctionAssociation, ...] = ()
    function_association: tuple[FunctionAssociation, ...] = ()

    def policies(self) -> BehaviorPolicies:
        """The cache, origin request and response headers policies this behavior uses,
        inline or managed (``config/policies.py``)."""
        return BehaviorPolicies(
            chosen_policy(self.cache_policy, self.cache_policy_id, MANAGED_CACHE_POLICIES),
            chosen_policy(
                self.origin_request_policy,
                self.origin_request_policy_id,
                MANAGED_ORIGIN_REQUEST_POLICIES,
            ),
            chosen_policy(
                self.response_headers_policy,
                self.response_headers_policy_id,
                MANAGED_RESPONSE_HEADERS_POLICIES,
            ),
        )

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
            raise invalid("must be 1-255 characters of A-Z a-z 0-9 _ - . * ? $ / ~ \" ' @ : + &")
        return value

    @field_validator("target_origin_id")
    @classmethod
    def _names_origin(cls, value: str, info: ValidationInfo) -> str:
        return one_of_loaded(value, info, "target_ids", "origin or origin group")

    @field_validator("allowed_methods")
    @classmethod
    def _allowed_set(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _method_set(value, ALLOWED_METHOD_SETS)

    @field_validator("cached_methods")
    @classmethod
    def _cached_set(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        value = _method_set(value, CACHED_METHOD_SETS)
        if not set(value) <= set(info.data.get("allowed_methods", METHOD_ORDER)):
            raise invalid("must be a subset of allowed_methods")
        return value

    @field_validator("default_ttl")
    @classmethod
    def _default_after_min(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("min_ttl", 0):
            raise invalid("must be at least min_ttl")
        return value

    @field_validator("max_ttl")
    @classmethod
    def _max_after_default(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("default_ttl", 0):
            raise invalid("must be at least default_ttl")
        return value

    @field_validator("lambda_function_association", "function_association")
    @classmethod
    def _one_per_stage(
        cls, value: tuple[LambdaFunctionAssociation | FunctionAssociation, ...]
    ) -> tuple[LambdaFunctionAssociation | FunctionAssociation, ...]:
        seen: set[str] = set()
        for index, association in enumerate(value):
            if association.event_type in seen:
                raise invalid(
                    f"a second {association.event_type} association (one per event_type)",
                    at=(index, "event_type"),
                )
            seen.add(association.event_type)
        return value

    @model_validator(mode="after")
    def _one_kind_per_stage(self) -> CacheBehavior:
        """CloudFront refuses a CloudFront Function and a Lambda@Edge function on the same
        event type of one behavior (DG edge-functions-choosing: one of each kind per stage
        is not allowed; an error names the event type)."""
        lambda_stages = {a.event_type.value for a in self.lambda_function_association}
        for index, association in enumerate(self.function_association):
            if association.event_type in lambda_stages:
                raise invalid(
                    f"a CloudFront Function and a Lambda@Edge function on {association.event_type}"
                    " (CloudFront allows one kind of function per event_type)",
                    at=("function_association", index, "event_type"),
                )
        return self

    @model_validator(mode="after")
    def _cache_key_source(self, info: ValidationInfo) -> CacheBehavior:
        pairs: tuple[tuple[str, object, str | None], ...] = (
            ("cache_policy", self.cache_policy, self.cache_policy_id),
            ("origin_request_policy", self.origin_request_policy, self.origin_request_policy_id),
            (
                "response_headers_policy",
                self.response_headers_policy,
                self.response_headers_policy_id,
            ),
        )
        for kind, inline, policy_id in pairs:
            if inline is not None and policy_id is not None:
                raise invalid(f"set {kind}_id or an inline {kind}, not both", at=(kind,))
        has_cache_policy = self.cache_policy_id is not None or self.cache_policy is not None
        has_orp = self.origin_request_policy_id is not None or self.origin_request_policy
        if has_orp and not has_cache_policy:
            # reference 7.6: an origin request policy works only beside a cache policy
            field = "origin_request_policy" + ("_id" if self.origin_request_policy_id else "")
            raise invalid("needs cache_policy_id (or an inline cache_policy)", at=(field,))
        # CloudFront needs exactly one way to build the cache key; checked when loading a
        # file, so code (and tests) may build bare behaviors.
        if context_of(info) and has_cache_policy == (self.forwarded_values is not None):
            raise invalid(
                "set exactly one of cache_policy_id or forwarded_values (or an inline cache_policy)"
            )
        return self


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _method_set(value: tuple[str, ...], sets: tuple[frozenset[str], ...]) -> tuple[str, ...]:
    if frozenset(value) not in sets or len(set(value)) != len(value):
        choices = " | ".join(",".join(m for m in METHOD_ORDER if m in s) for s in sets)
        raise invalid(f"must be one of the sets {choices}")
    return tuple(m for m in METHOD_ORDER if m in value)  # one canonical order
