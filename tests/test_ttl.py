"""TTL rules (reference 7.4, 7.11): one test per table row."""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

import pytest
from config_builder import cache_behavior, forwarded_values

from edgeproxy.cache.ttl import (
    DEFAULT_ERROR_CACHING_MIN_TTL,
    MAX_LIFETIME,
    STATUS_RULES,
    Freshness,
    StatusRule,
    TtlPolicy,
    freshness,
    parse_cache_control,
    ttl_for,
    uncached_fields,
)
from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.distribution import CustomErrorResponse
from edgeproxy.messages import Headers

NOW = 1_700_000_000.0
DEFAULT = TtlPolicy()  # 0 / 86400 / 31536000


def cc(value: str) -> Headers:
    return [("Cache-Control", value)]


def expires_in(seconds: float) -> Headers:
    return [("Expires", formatdate(NOW + seconds, usegmt=True))]


# --- 7.4: standard objects ----------------------------------------------------------------

STANDARD_CASES = [
    # (min, default, max), headers, expected ttl
    pytest.param((0, 86400, 31536000), [], 86400.0, id="no-header-default-ttl"),
    pytest.param((0, 86400, 31536000), cc("max-age=60"), 60.0, id="max-age"),
    pytest.param((0, 86400, 100), cc("max-age=3600"), 100.0, id="max-ttl-clamps-long-max-age"),
    pytest.param((300, 86400, 31536000), cc("max-age=60"), 300.0, id="min-ttl-raises-max-age"),
    pytest.param((0, 86400, 31536000), cc("no-store"), None, id="no-store-min-0-not-cached"),
    pytest.param((0, 86400, 31536000), cc("no-cache"), None, id="no-cache-min-0-not-cached"),
    pytest.param((0, 86400, 31536000), cc("private"), None, id="private-min-0-not-cached"),
    pytest.param((30, 86400, 31536000), cc("no-cache"), 30.0, id="min-ttl-overrides-no-cache"),
    pytest.param((30, 86400, 31536000), cc("no-store"), 30.0, id="min-ttl-overrides-no-store"),
    pytest.param((30, 86400, 31536000), cc("private, max-age=900"), 30.0, id="private-wins"),
    pytest.param((0, 86400, 31536000), cc("max-age=60, s-maxage=120"), 120.0, id="s-maxage-wins"),
    pytest.param((0, 86400, 31536000), cc("s-maxage=5, max-age=60"), 5.0, id="s-maxage-first"),
    pytest.param((0, 86400, 31536000), cc("max-age=0"), 0.0, id="max-age-0-stale-at-once"),
    pytest.param((0, 86400, 31536000), cc("public"), 86400.0, id="no-lifetime-directive"),
    pytest.param((600, 60, 31536000), [], 600.0, id="no-header-max-min-default"),
    pytest.param((0, 0, 31536000), [], 0.0, id="default-0"),
    pytest.param((0, 86400, 31536000), cc("max-age=abc"), 0.0, id="malformed-max-age-is-0"),
    pytest.param((0, 86400, 31536000), cc("max-age=-5"), 0.0, id="negative-max-age-is-0"),
    pytest.param((0, 86400, 31536000), cc('no-cache="Set-Cookie"'), 86400.0, id="qualified"),
    pytest.param((0, 86400, 31536000), cc("No-Store"), None, id="directive-case"),
    pytest.param((0, 0, 0), cc("max-age=60"), None, id="caching-disabled"),
]


@pytest.mark.parametrize(("ttls", "headers", "expected"), STANDARD_CASES)
def test_standard_ttl(ttls: tuple[int, int, int], headers: Headers, expected: float | None) -> None:
    assert ttl_for(TtlPolicy(*ttls), 200, headers, NOW) == expected


def test_max_age_capped_at_100_years() -> None:
    policy = TtlPolicy(0, 0, 10 * MAX_LIFETIME)
    assert ttl_for(policy, 200, cc("max-age=99999999999"), NOW) == MAX_LIFETIME


def test_several_cache_control_headers_are_joined() -> None:
    headers = [("cache-control", "public"), ("CACHE-CONTROL", "max-age=42")]
    assert ttl_for(DEFAULT, 200, headers, NOW) == 42.0


# --- Expires ------------------------------------------------------------------------------


def test_expires_relative_to_now() -> None:
    assert ttl_for(DEFAULT, 200, expires_in(3600), NOW) == 3600.0


def test_expires_in_the_past_is_stale_at_once() -> None:
    assert ttl_for(DEFAULT, 200, expires_in(-60), NOW) == 0.0


def test_expires_raised_by_min_ttl() -> None:
    assert ttl_for(TtlPolicy(100, 86400, 31536000), 200, expires_in(-60), NOW) == 100.0


def test_expires_clamped_by_max_ttl() -> None:
    assert ttl_for(TtlPolicy(0, 10, 500), 200, expires_in(3600), NOW) == 500.0


def test_invalid_expires_means_expired() -> None:
    assert ttl_for(DEFAULT, 200, [("Expires", "0")], NOW) == 0.0


def test_max_age_beats_expires() -> None:
    headers = [*expires_in(3600), ("Cache-Control", "max-age=60")]
    assert ttl_for(DEFAULT, 200, headers, NOW) == 60.0


def test_s_maxage_beats_expires() -> None:
    headers = [*expires_in(3600), ("Cache-Control", "s-maxage=7")]
    assert ttl_for(DEFAULT, 200, headers, NOW) == 7.0


# --- statuses ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 203, 204, 206, 300, 301, 302, 303, 307, 308])
def test_standard_statuses_cached_with_default_ttl(status: int) -> None:
    assert ttl_for(DEFAULT, status, [], NOW) == 86400.0


@pytest.mark.parametrize("status", [100, 201, 202, 205, 304, 401, 407, 409, 413, 416, 429, 505])
def test_other_statuses_never_cached(status: int) -> None:
    assert ttl_for(DEFAULT, status, cc("max-age=600"), NOW) is None


def test_416_is_never_in_the_table_as_cacheable() -> None:
    assert STATUS_RULES[416] is StatusRule.NEVER


ALWAYS_CACHED_ERRORS = [404, 410, 414, 500, 501, 502, 503, 504]
MAX_AGE_ONLY_ERRORS = [400, 403, 405, 412, 415]


@pytest.mark.parametrize("status", ALWAYS_CACHED_ERRORS)
def test_errors_cached_for_error_min_ttl(status: int) -> None:
    assert ttl_for(DEFAULT, status, [], NOW) == float(DEFAULT_ERROR_CACHING_MIN_TTL)


@pytest.mark.parametrize("status", ALWAYS_CACHED_ERRORS + MAX_AGE_ONLY_ERRORS)
def test_error_ttl_is_max_of_error_min_and_max_age(status: int) -> None:
    assert ttl_for(DEFAULT, status, cc("max-age=300"), NOW) == 300.0
    assert ttl_for(DEFAULT, status, cc("max-age=3"), NOW) == 10.0


@pytest.mark.parametrize("status", ALWAYS_CACHED_ERRORS)
def test_error_max_age_capped_by_max_ttl(status: int) -> None:
    policy = TtlPolicy(0, 86400, 60)
    assert ttl_for(policy, status, cc("max-age=300"), NOW) == 60.0


def test_error_expires_counts_for_always_cached() -> None:
    assert ttl_for(DEFAULT, 503, expires_in(120), NOW) == 120.0


@pytest.mark.parametrize("status", MAX_AGE_ONLY_ERRORS)
def test_max_age_only_errors_need_max_age(status: int) -> None:
    assert ttl_for(DEFAULT, status, [], NOW) is None
    assert ttl_for(DEFAULT, status, expires_in(600), NOW) is None
    assert ttl_for(DEFAULT, status, cc("s-maxage=30"), NOW) == 30.0


@pytest.mark.parametrize("status", [404, 410, 414, 501])
@pytest.mark.parametrize("directive", ["no-store", "no-cache", "private"])
def test_no_store_honoured_on_some_errors(status: int, directive: str) -> None:
    assert ttl_for(DEFAULT, status, cc(directive), NOW) is None
    assert ttl_for(TtlPolicy(60, 86400, 31536000), status, cc(directive), NOW) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_no_store_ignored_on_other_errors(status: int) -> None:
    assert ttl_for(DEFAULT, status, cc("no-store"), NOW) == 10.0


def test_behavior_min_ttl_does_not_apply_to_errors() -> None:
    assert ttl_for(TtlPolicy(3600, 86400, 31536000), 404, [], NOW) == 10.0


def test_error_caching_min_ttl_per_status() -> None:
    policy = TtlPolicy(error_caching_min_ttl={503: 0, 404: 300})
    assert ttl_for(policy, 503, [], NOW) == 0.0
    assert ttl_for(policy, 404, [], NOW) == 300.0
    assert ttl_for(policy, 502, [], NOW) == 10.0


def test_errors_cached_even_with_caching_disabled() -> None:
    assert ttl_for(TtlPolicy(0, 0, 0), 502, cc("max-age=60"), NOW) == 10.0


# --- Vary, freshness extras -------------------------------------------------------------


def test_vary_star_with_min_0_is_stale_at_once() -> None:
    assert ttl_for(DEFAULT, 200, [("Vary", "*"), *cc("max-age=60")], NOW) == 0.0


def test_vary_star_with_min_above_0_is_ordinary() -> None:
    policy = TtlPolicy(5, 86400, 31536000)
    assert ttl_for(policy, 200, [("Vary", "*"), *cc("max-age=60")], NOW) == 60.0


def test_freshness_stale_directives() -> None:
    headers = cc("max-age=60, stale-while-revalidate=30, stale-if-error=600")
    assert freshness(DEFAULT, 200, headers, NOW) == Freshness(60.0, 30.0, 600.0)


def test_freshness_defaults() -> None:
    assert freshness(DEFAULT, 200, cc("max-age=60"), NOW) == Freshness(60.0, 0.0, None)


def test_stale_if_error_zero_is_kept() -> None:
    fresh = freshness(TtlPolicy(60, 86400, 31536000), 200, cc("no-store, stale-if-error=0"), NOW)
    assert fresh == Freshness(60.0, 0.0, 0.0)


def test_freshness_none_when_not_stored() -> None:
    assert freshness(DEFAULT, 200, cc("no-store"), NOW) is None


# --- parsing --------------------------------------------------------------------------------


def test_parse_cache_control() -> None:
    parsed = parse_cache_control('Public, MAX-AGE = 60, no-cache="Set-Cookie, X-A",, s-maxage=5')
    assert parsed == {
        "public": None,
        "max-age": "60",
        "no-cache": "Set-Cookie, X-A",
        "s-maxage": "5",
    }


def test_parse_cache_control_first_wins() -> None:
    assert parse_cache_control("max-age=10, max-age=20") == {"max-age": "10"}


def test_uncached_fields() -> None:
    assert uncached_fields(cc('no-cache="Set-Cookie, X-Foo"')) == {"set-cookie", "x-foo"}
    assert uncached_fields(cc("no-cache")) == frozenset()
    assert uncached_fields([]) == frozenset()
    assert uncached_fields(cc('private="Set-Cookie", no-cache="X-A"')) == {"set-cookie", "x-a"}
    assert uncached_fields(cc("private")) == frozenset()


def test_qualified_private_stores_the_answer_and_bare_private_does_not() -> None:
    # RFC 9111 5.2.2.7: private="field" keeps only that field out of a shared cache.
    assert ttl_for(DEFAULT, 200, cc('private="Set-Cookie", max-age=60'), NOW) == 60.0
    assert ttl_for(DEFAULT, 200, cc("private, max-age=60"), NOW) is None


# --- from_behavior ------------------------------------------------------------------------


def behavior(**overrides: Any) -> CacheBehavior:
    ttls: dict[str, Any] = {"min_ttl": 1, "default_ttl": 2, "max_ttl": 3}
    return cache_behavior(**{**ttls, "forwarded_values": forwarded_values(), **overrides})


def test_from_behavior_reads_ttls() -> None:
    assert TtlPolicy.from_behavior(behavior()) == TtlPolicy(1, 2, 3)


def test_from_behavior_error_caching_min_ttl() -> None:
    errors = [
        CustomErrorResponse(error_code=404, error_caching_min_ttl=60),
        CustomErrorResponse(error_code=500),  # Terraform's default: 10 s
        CustomErrorResponse(error_code=503, error_caching_min_ttl=0),
    ]
    policy = TtlPolicy.from_behavior(behavior(), errors)
    assert policy.error_caching_min_ttl == {404: 60, 500: 10, 503: 0}
    assert (policy.error_min_ttl(404), policy.error_min_ttl(503)) == (60, 0)
    assert policy.error_min_ttl(502) == 10  # no custom_error_response: CloudFront's 10 s


def test_from_behavior_forward_all_headers_disables_caching() -> None:
    fv = forwarded_values(headers=("*",))
    assert TtlPolicy.from_behavior(behavior(forwarded_values=fv)).caching_disabled


def test_from_behavior_managed_policy() -> None:
    caching_disabled = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    optimized = "658327ea-f89d-4fab-a63d-7e88639e58f6"
    assert TtlPolicy.from_behavior(behavior(cache_policy_id=caching_disabled)).caching_disabled
    assert TtlPolicy.from_behavior(behavior(cache_policy_id=optimized)) == TtlPolicy(
        1, 86400, 31536000
    )


def test_unknown_policy_is_refused_when_the_behavior_is_built() -> None:
    with pytest.raises(ValueError, match="must be a managed cache policy"):
        behavior(cache_policy_id="nope")


def test_from_behavior_without_forwarded_values() -> None:
    assert TtlPolicy.from_behavior(behavior(forwarded_values=None)) == TtlPolicy(1, 2, 3)


def test_from_behavior_inline_cache_policy() -> None:
    from edgeproxy.config.policy_models import CachePolicyConfig

    inline = CachePolicyConfig.model_validate(
        {
            "name": "short",
            "min_ttl": 5,
            "default_ttl": 30,
            "max_ttl": 300,
            "parameters_in_cache_key_and_forwarded_to_origin": {
                "headers_config": {"header_behavior": "none"},
                "cookies_config": {"cookie_behavior": "none"},
                "query_strings_config": {"query_string_behavior": "none"},
            },
        }
    )
    got = TtlPolicy.from_behavior(behavior(cache_policy=inline))
    assert got == TtlPolicy(5, 30, 300)  # the policy's TTLs, not the behavior's 1/2/3
    assert ttl_for(got, 200, [("Cache-Control", "max-age=1")], 0.0) == 5.0
    assert ttl_for(got, 200, [("Cache-Control", "max-age=900")], 0.0) == 300.0
