"""Typed, frozen models of CloudFront's cache and origin request policies, with Terraform's
field names: ``aws_cloudfront_cache_policy`` and ``aws_cloudfront_origin_request_policy``
(AWS provider 5.x/6.x argument names); the third policy lives in ``response_headers_policy``.

They serve twice: a cache behavior may carry one of each inline (``cache_policy:``,
``origin_request_policy:``, a local extension: CloudFront itself only takes policy IDs), and
``config/policies.py`` writes the managed policies with them, so an inline policy and a
managed one take the same road to the cache key and the origin request.

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
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from edgeproxy.config.types import (
    FrozenModel,
    NonEmpty,
    Seconds,
    invalid,
)

DEFAULT_TTL = 86_400
MAX_TTL = 31_536_000
MAX_ITEMS = 10  # headers, cookies or query strings per policy (DG cloudfront-limits)

Behavior = Literal["none", "whitelist", "allExcept", "all"]
CacheHeaderBehavior = Literal["none", "whitelist"]
OriginHeaderBehavior = Literal[
    "none", "whitelist", "allViewer", "allViewerAndWhitelistCloudFront", "allExcept"
]

# Behaviors that name items, and those that must not (API *Config types).
_NAMING = frozenset({"whitelist", "allExcept", "allViewerAndWhitelistCloudFront"})


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
