"""CloudFront's managed policies as data, and the policies a cache behavior ends up with.

Managed policies are written with the same models as inline ones (``policy_models``), so both
take one road to the cache key (``cache/key.py`` ``KeyPolicy.from_policies``), the TTLs
(``ttl.TtlPolicy``) and the viewer's headers (``response_headers.ResponseHeaders``). A config
names a managed policy by ID or by name; names are accepted as the console writes them
(``CachingOptimized``) and as Terraform's data sources look them up (``Managed-CachingOptimized``).

Where each fact comes from (tags as in the reference, section 0):

* Cache policies: IDs, TTLs and key contents from reference 7.5 [DG
  using-managed-cache-policies]; the key contents of UseOriginCacheControlHeaders(-QueryStrings)
  are from public Terraform/CDK files naming those IDs (reference 7.5 says so). Which codings
  each policy normalises (gzip and/or br) is from the same page; Elemental-MediaPackage is
  gzip only. Cross-checked against the managed-policy catalogue of a public CloudFront
  emulator (ministack, code search), which agrees on every value.
* Origin request policies: IDs and contents from reference 7.6 [DG
  using-managed-origin-request-policies]. Elemental-MediaTailor-PersonalizedManifests
  (775133bc-…) and the CloudFront-* list of AllViewerAndCloudFrontHeaders-2022-06 are not
  in the reference: both from the emulator catalogue above and from CDK's
  ``OriginRequestPolicy.ELEMENTAL_MEDIA_TAILOR`` / ``ALL_VIEWER_AND_CLOUDFRONT_2022`` IDs
  (code search) [obs]; the CloudFront-* list matches the DG description "every CloudFront
  header released through June 2022 except JA3 and header order/count" [inf].
* Response headers policies: IDs, names and the override rules ("SecurityHeadersPolicy
  always sets X-Content-Type-Options: nosniff; for the other headers the origin's value
  wins"; "SimpleCORS adds Access-Control-Allow-Origin: *") from [DG
  using-managed-response-headers-policies] (awsdocs repository, both revisions). The
  header values (HSTS max-age 31536000, X-Frame-Options SAMEORIGIN, Referrer-Policy
  strict-origin-when-cross-origin, X-XSS-Protection 1; mode=block; CORS-With-Preflight
  allowing DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT and exposing ``*``) are in tables the
  archived page does not carry: taken from the emulator catalogue above and a public
  simulator's review thread (floci pull 1833), which agree [obs, not read on the AWS page].
  ``access_control_allow_headers`` of the preflight policies is empty in both [obs]; marked
  [?] since the AWS page text speaks of "all three" CORS headers on a preflight.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TypeVar

from edgeproxy.config.policy_models import (
    CacheHeadersConfig,
    CacheKeyParameters,
    CachePolicyConfig,
    CookiesConfig,
    Items,
    OriginHeadersConfig,
    OriginRequestPolicyConfig,
    QueryStringsConfig,
)
from edgeproxy.config.response_headers_policy import (
    ContentTypeOptions,
    CorsConfig,
    FrameOptions,
    ReferrerPolicy,
    ResponseHeadersPolicyConfig,
    SecurityHeadersConfig,
    StrictTransportSecurity,
    XssProtection,
)

MANAGED_PREFIX = "Managed-"

# --- cache policies (reference 7.5) -------------------------------------------------------


def _key(
    headers: tuple[str, ...] = (),
    cookies: str = "none",
    query: str = "none",
    query_names: tuple[str, ...] = (),
    *,
    gzip: bool = False,
    br: bool = False,
) -> CacheKeyParameters:
    return CacheKeyParameters(
        headers_config=CacheHeadersConfig(
            header_behavior="whitelist" if headers else "none",
            headers=Items(items=headers) if headers else None,
        ),
        cookies_config=CookiesConfig(cookie_behavior=cookies),
        query_strings_config=QueryStringsConfig(
            query_string_behavior=query,
            query_strings=Items(items=query_names) if query_names else None,
        ),
        enable_accept_encoding_gzip=gzip,
        enable_accept_encoding_brotli=br,
    )


def _cache(name: str, ttls: tuple[int, int, int], key: CacheKeyParameters) -> CachePolicyConfig:
    low, default, high = ttls
    return CachePolicyConfig(
        name=name,
        min_ttl=low,
        default_ttl=default,
        max_ttl=high,
        parameters_in_cache_key_and_forwarded_to_origin=key,
    )


_YEAR = 31_536_000
_METHOD_OVERRIDE = (
    "Host",
    "Origin",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
)

MANAGED_CACHE_POLICIES: Mapping[str, CachePolicyConfig] = MappingProxyType(
    {
        "658327ea-f89d-4fab-a63d-7e88639e58f6": _cache(
            "CachingOptimized", (1, 86_400, _YEAR), _key(gzip=True, br=True)
        ),
        "b2884449-e4de-46a7-ac36-70bc7f1ddd6d": _cache(
            "CachingOptimizedForUncompressedObjects", (1, 86_400, _YEAR), _key()
        ),
        "4135ea2d-6df8-44a3-9df3-4b5a84be39ad": _cache("CachingDisabled", (0, 0, 0), _key()),
        "2e54312d-136d-493c-8eb9-b001f22f67d2": _cache(
            "Amplify",
            (2, 2, 600),
            _key(
                ("Authorization", "CloudFront-Viewer-Country", "Host"),
                "all",
                "all",
                gzip=True,
                br=True,
            ),
        ),
        "08627262-05a9-4f76-9ded-b50ca2e3a84f": _cache(
            "Elemental-MediaPackage",
            (0, 86_400, _YEAR),
            _key(
                ("Origin",),
                query="whitelist",
                query_names=("aws.manifestfilter", "start", "end", "m"),
                gzip=True,
            ),
        ),
        "83da9c7e-98b4-4e11-a168-04f0df8e2c65": _cache(
            "UseOriginCacheControlHeaders",
            (0, 0, _YEAR),
            _key(_METHOD_OVERRIDE, "all", gzip=True, br=True),
        ),
        "4cc15a8a-d715-48a4-82b8-cc0b614638fe": _cache(
            "UseOriginCacheControlHeaders-QueryStrings",
            (0, 0, _YEAR),
            _key(_METHOD_OVERRIDE, "all", "all", gzip=True, br=True),
        ),
    }
)

# --- origin request policies (reference 7.6) ----------------------------------------------

# CloudFront-* headers released by June 2022, minus JA3 and header order/count [obs; inf].
CLOUDFRONT_HEADERS_2022_06 = (
    "CloudFront-Forwarded-Proto",
    "CloudFront-Is-Android-Viewer",
    "CloudFront-Is-Desktop-Viewer",
    "CloudFront-Is-IOS-Viewer",
    "CloudFront-Is-Mobile-Viewer",
    "CloudFront-Is-SmartTV-Viewer",
    "CloudFront-Is-Tablet-Viewer",
    "CloudFront-Viewer-Address",
    "CloudFront-Viewer-ASN",
    "CloudFront-Viewer-City",
    "CloudFront-Viewer-Country",
    "CloudFront-Viewer-Country-Name",
    "CloudFront-Viewer-Country-Region",
    "CloudFront-Viewer-Country-Region-Name",
    "CloudFront-Viewer-Http-Version",
    "CloudFront-Viewer-Latitude",
    "CloudFront-Viewer-Longitude",
    "CloudFront-Viewer-Metro-Code",
    "CloudFront-Viewer-Postal-Code",
    "CloudFront-Viewer-Time-Zone",
    "CloudFront-Viewer-TLS",
)
_CORS_REQUEST = ("Origin", "Access-Control-Request-Headers", "Access-Control-Request-Method")


def _orp(
    name: str, behavior: str, headers: tuple[str, ...] = (), *, everything: bool = False
) -> OriginRequestPolicyConfig:
    rest = "all" if everything else "none"
    return OriginRequestPolicyConfig(
        name=name,
        headers_config=OriginHeadersConfig(
            header_behavior=behavior,
            headers=Items(items=headers) if headers else None,
        ),
        cookies_config=CookiesConfig(cookie_behavior=rest),
        query_strings_config=QueryStringsConfig(query_string_behavior=rest),
    )


MANAGED_ORIGIN_REQUEST_POLICIES: Mapping[str, OriginRequestPolicyConfig] = MappingProxyType(
    {
        "216adef6-5c7f-47e4-b989-5492eafa07d3": _orp("AllViewer", "allViewer", everything=True),
        "33f36d7e-f396-46d9-90e0-52428a34d9dc": _orp(
            "AllViewerAndCloudFrontHeaders-2022-06",
            "allViewerAndWhitelistCloudFront",
            CLOUDFRONT_HEADERS_2022_06,
            everything=True,
        ),
        "b689b0a8-53d0-40ab-baf2-68738e2966ac": _orp(
            "AllViewerExceptHostHeader", "allExcept", ("Host",), everything=True
        ),
        "59781a5b-3903-41f3-afcb-af62929ccde1": _orp("CORS-CustomOrigin", "whitelist", ("Origin",)),
        "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf": _orp("CORS-S3Origin", "whitelist", _CORS_REQUEST),
        "acba4595-bd28-49b8-b9fe-13317c0390fa": _orp(
            "UserAgentRefererHeaders", "whitelist", ("User-Agent", "Referer")
        ),
        "775133bc-15f2-49f9-abea-afb2e0bf67d2": OriginRequestPolicyConfig(
            name="Elemental-MediaTailor-PersonalizedManifests",
            headers_config=OriginHeadersConfig(
                header_behavior="whitelist",
                headers=Items(items=(*_CORS_REQUEST, "User-Agent", "X-Forwarded-For")),
            ),
            cookies_config=CookiesConfig(cookie_behavior="none"),
            query_strings_config=QueryStringsConfig(query_string_behavior="all"),
        ),
    }
)

# --- response headers policies -------------------------------------------------------------

_SECURITY = SecurityHeadersConfig(
    content_type_options=ContentTypeOptions(override=True),
    frame_options=FrameOptions(frame_option="SAMEORIGIN", override=False),
    referrer_policy=ReferrerPolicy(
        referrer_policy="strict-origin-when-cross-origin", override=False
    ),
    strict_transport_security=StrictTransportSecurity(
        access_control_max_age_sec=_YEAR, override=False
    ),
    xss_protection=XssProtection(protection=True, mode_block=True, override=False),
)
_ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _cors(methods: tuple[str, ...] = (), expose: tuple[str, ...] = ()) -> CorsConfig:
    return CorsConfig(
        access_control_allow_credentials=False,
        access_control_allow_headers=Items(),  # [?] see module docstring
        access_control_allow_methods=Items(items=methods),
        access_control_allow_origins=Items(items=("*",)),
        access_control_expose_headers=Items(items=expose) if expose else None,
        origin_override=False,
    )


def _rhp(
    name: str, cors: CorsConfig | None = None, security: SecurityHeadersConfig | None = None
) -> ResponseHeadersPolicyConfig:
    return ResponseHeadersPolicyConfig(
        name=name, cors_config=cors, security_headers_config=security
    )


_PREFLIGHT = _cors(_ALL_METHODS, ("*",))

MANAGED_RESPONSE_HEADERS_POLICIES: Mapping[str, ResponseHeadersPolicyConfig] = MappingProxyType(
    {
        "60669652-455b-4ae9-85a4-c4c02393f86c": _rhp("SimpleCORS", _cors()),
        "5cc3b908-e619-4b99-88e5-2cf7f45965bd": _rhp("CORS-With-Preflight", _PREFLIGHT),
        "67f7725c-6f97-4210-82d7-5512b31e9d03": _rhp("SecurityHeadersPolicy", security=_SECURITY),
        "e61eb60c-9c35-4d20-a928-2b84e02af89c": _rhp(
            "CORS-and-SecurityHeadersPolicy", _cors(), _SECURITY
        ),
        "eaab4381-ed33-4a86-88ca-d9558dc6cd63": _rhp(
            "CORS-with-preflight-and-SecurityHeadersPolicy", _PREFLIGHT, _SECURITY
        ),
    }
)

# --- lookup by name or ID -------------------------------------------------------------------

P = TypeVar("P", CachePolicyConfig, OriginRequestPolicyConfig, ResponseHeadersPolicyConfig)
AnyPolicy = CachePolicyConfig | OriginRequestPolicyConfig | ResponseHeadersPolicyConfig


def _ids_by_name(policies: Mapping[str, AnyPolicy]) -> Mapping[str, str]:
    names: dict[str, str] = {}
    for policy_id, policy in policies.items():
        names[policy.name] = policy_id
        names[MANAGED_PREFIX + policy.name] = policy_id
    return MappingProxyType(names)


CACHE_POLICY_IDS = _ids_by_name(MANAGED_CACHE_POLICIES)
ORIGIN_REQUEST_POLICY_IDS = _ids_by_name(MANAGED_ORIGIN_REQUEST_POLICIES)
RESPONSE_HEADERS_POLICY_IDS = _ids_by_name(MANAGED_RESPONSE_HEADERS_POLICIES)

# kind → (policies by ID, IDs by name), what config validation reads
MANAGED: Mapping[str, tuple[Mapping[str, AnyPolicy], Mapping[str, str]]] = MappingProxyType(
    {
        "cache": (MANAGED_CACHE_POLICIES, CACHE_POLICY_IDS),
        "origin request": (MANAGED_ORIGIN_REQUEST_POLICIES, ORIGIN_REQUEST_POLICY_IDS),
        "response headers": (MANAGED_RESPONSE_HEADERS_POLICIES, RESPONSE_HEADERS_POLICY_IDS),
    }
)


def managed_id(kind: str, name_or_id: str) -> str | None:
    """The ID of the managed ``kind`` policy named (or identified) by ``name_or_id``."""
    policies, ids = MANAGED[kind]
    if name_or_id in policies:
        return name_or_id
    return ids.get(name_or_id)


@dataclass(frozen=True, slots=True)
class BehaviorPolicies:
    """The three policies one cache behavior uses; None where it has none
    (``CacheBehavior.policies`` builds it).

    ``cache`` None means the legacy ``forwarded_values`` settings make the key."""

    cache: CachePolicyConfig | None = None
    origin_request: OriginRequestPolicyConfig | None = None
    response_headers: ResponseHeadersPolicyConfig | None = None


def chosen_policy(inline: P | None, policy_id: str | None, managed: Mapping[str, P]) -> P | None:
    """A behavior's policy: the inline block wins over an ID (the config refuses both at
    once). The ID is a managed one: ``CacheBehavior`` validated it (``behaviors._managed``)."""
    if inline is not None:
        return inline
    return managed[policy_id] if policy_id is not None else None
