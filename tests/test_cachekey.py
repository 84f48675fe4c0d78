"""Cache key and origin forwarding (reference 6.2, 7.5-7.7)."""

from __future__ import annotations

from typing import Any

import pytest
from config_builder import cache_behavior, forwarded_values

from edgeproxy.cache.encodings import accepted_encodings
from edgeproxy.cache.key import CacheKey, KeyPolicy, cache_key, origin_headers, origin_querystring
from edgeproxy.cache.selection import (
    ALL,
    ALL_EXCEPT,
    NONE,
    WHITELIST,
    Selection,
    headers_selection,
    parse_cookies,
)
from edgeproxy.cache.ttl import TtlPolicy
from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.policies import MANAGED_CACHE_POLICIES, MANAGED_ORIGIN_REQUEST_POLICIES
from edgeproxy.messages import EdgeRequest, Headers
from edgeproxy.viewer.request_checks import as_received

HOST = "d111111abcdef8.cloudfront.net"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
CORS_CUSTOM = "59781a5b-3903-41f3-afcb-af62929ccde1"
AMPLIFY = "2e54312d-136d-493c-8eb9-b001f22f67d2"


def behavior(
    *,
    cached_methods: tuple[str, ...] = ("GET", "HEAD"),
    cache_policy_id: str | None = None,
    origin_request_policy_id: str | None = None,
    no_forwarded_values: bool = False,
    **forwarded: Any,
) -> CacheBehavior:
    return cache_behavior(
        forwarded_values=None if no_forwarded_values else forwarded_values(**forwarded),
        cached_methods=cached_methods,
        cache_policy_id=cache_policy_id,
        origin_request_policy_id=origin_request_policy_id,
    )


def req(
    uri: str = "/a.jpg",
    qs: str = "",
    headers: Headers | None = None,
    method: str = "GET",
    http_version: str = "1.1",
) -> EdgeRequest:
    return EdgeRequest(method, uri, qs, headers or [], "192.0.2.1", http_version=http_version)


def key(policy: KeyPolicy, request: EdgeRequest) -> CacheKey:
    return cache_key(policy, request, HOST)


def legacy(**kwargs: Any) -> KeyPolicy:
    return KeyPolicy.from_behavior(behavior(**kwargs))


# --- base key -------------------------------------------------------------------------------


def test_key_has_host_uri_and_is_hashable() -> None:
    k = key(legacy(), req("/x"))
    assert (k.host, k.uri, k.method, k.query, k.headers, k.cookies) == (HOST, "/x", "", "", (), "")
    assert hash(k) == hash(key(legacy(), req("/x")))


def test_method_only_for_options() -> None:
    policy = legacy()
    assert key(policy, req(method="GET")) == key(policy, req(method="HEAD"))
    assert key(policy, req(method="OPTIONS")) != key(policy, req(method="GET"))
    assert key(policy, req(method="OPTIONS")).method == "OPTIONS"


def test_different_distribution_host_different_key() -> None:
    assert cache_key(legacy(), req(), "a") != cache_key(legacy(), req(), "b")


def test_viewer_host_is_not_in_the_key_unless_named_and_then_without_its_port() -> None:
    # DG understanding-the-cache-key: the default key holds the distribution's domain name.
    www, apex = [("Host", "www.example.com:8443")], [("Host", "example.com")]
    assert key(legacy(), req(headers=www)) == key(legacy(), req(headers=apex))
    named = legacy(headers=["Host"])
    assert key(named, req(headers=www)).headers == ("www.example.com",)
    assert key(named, req(headers=[("Host", "[::1]:8443")])).headers == ("[::1]",)
    assert key(named, req(headers=[("Host", "Example.COM")])) == key(named, req(headers=apex))


def test_target_property() -> None:
    assert key(legacy(query_string=True), req("/p", "a=1")).target == "/p?a=1"
    assert key(legacy(), req("/p", "a=1")).target == "/p"


# --- query strings --------------------------------------------------------------------------


def test_query_string_not_in_key_when_not_forwarded() -> None:
    policy = legacy()
    assert key(policy, req(qs="a=1")) == key(policy, req(qs="a=2")) == key(policy, req())
    assert origin_querystring(policy, "a=1") == ""


def test_query_string_all_raw_order_and_case_matter() -> None:
    policy = legacy(query_string=True)
    assert key(policy, req(qs="a=1&b=2")).query == "a=1&b=2"
    assert key(policy, req(qs="a=1&b=2")) != key(policy, req(qs="b=2&a=1"))
    assert key(policy, req(qs="a=1")) != key(policy, req(qs="A=1"))
    assert origin_querystring(policy, "b=2&a=1") == "b=2&a=1"


def test_query_string_whitelist_keeps_viewer_order() -> None:
    policy = legacy(query_string=True, query_string_cache_keys=("b", "a"))
    assert key(policy, req(qs="a=1&x=9&b=2&flag")).query == "a=1&b=2"
    assert key(policy, req(qs="a=1&x=9")) == key(policy, req(qs="a=1&x=8"))
    assert key(policy, req(qs="A=1")).query == ""


def test_legacy_whitelist_still_forwards_all_query_strings() -> None:
    policy = legacy(query_string=True, query_string_cache_keys=("a",))
    assert origin_querystring(policy, "a=1&x=9") == "a=1&x=9"


def test_semicolon_is_not_a_separator() -> None:
    policy = legacy(query_string=True, query_string_cache_keys=("a",))
    assert key(policy, req(qs="a=1;b=2&c=3")).query == "a=1;b=2"


# --- headers ----------------------------------------------------------------------------------


def test_named_headers_in_key_case_insensitive() -> None:
    policy = legacy(headers=("Accept-Language", "X-Device"))
    k = key(policy, req(headers=[("x-device", "phone"), ("ACCEPT-LANGUAGE", "fr")]))
    assert k.headers == ("fr", "phone")


def test_header_variants_differ_and_absent_is_none() -> None:
    policy = legacy(headers=("Accept-Language",))
    fr = key(policy, req(headers=[("Accept-Language", "fr")]))
    de = key(policy, req(headers=[("Accept-Language", "de")]))
    assert fr != de
    assert key(policy, req()).headers == (None,)
    assert key(policy, req(headers=[("Accept-Language", "")])).headers == ("",)


def test_unnamed_headers_not_in_key() -> None:
    policy = legacy(headers=("X-A",))
    assert key(policy, req(headers=[("X-B", "1")])) == key(policy, req(headers=[("X-B", "2")]))


def test_repeated_header_values_joined() -> None:
    policy = legacy(headers=("X-A",))
    assert key(policy, req(headers=[("X-A", "1"), ("x-a", "2")])).headers == ("1,2",)


# --- cookies ----------------------------------------------------------------------------------


def test_cookies_none_not_in_key() -> None:
    policy = legacy()
    assert key(policy, req(headers=[("Cookie", "a=1")])) == key(policy, req())


def test_cookies_all_sorted_by_name() -> None:
    policy = legacy(cookies="all")
    one = key(policy, req(headers=[("Cookie", "b=2; a=1")]))
    two = key(policy, req(headers=[("Cookie", "a=1"), ("Cookie", "b=2")]))
    assert one.cookies == two.cookies == "a=1; b=2"


def test_cookie_names_and_values_case_sensitive() -> None:
    policy = legacy(cookies="all")
    assert key(policy, req(headers=[("Cookie", "a=1")])) != key(
        policy, req(headers=[("Cookie", "A=1")])
    )


def test_cookie_whitelist_with_wildcards() -> None:
    policy = legacy(cookies="whitelist", cookie_names=("session", "pref-*", "ab?"))
    cookie = "zz=0; pref-lang=fr; session=s1; abc=1; abcd=2; pref=3; other=x"
    assert key(policy, req(headers=[("Cookie", cookie)])).cookies == (
        "abc=1; pref-lang=fr; session=s1"
    )


def test_malformed_cookies_ignored() -> None:
    assert parse_cookies([("Cookie", "a=1; junk; =x; b=; c=3=3")]) == [
        ("a", "1"),
        ("b", ""),
        ("c", "3=3"),
    ]


# --- Accept-Encoding --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip, deflate, br", "br,gzip"),
        ("gzip", "gzip"),
        ("BR", "br"),
        ("deflate", ""),
        ("gzip;q=0, br", "br"),
        ("gzip; q=0.5", "gzip"),
        (None, ""),
        ("", ""),
    ],
)
def test_accepted_encodings(value: str | None, expected: str) -> None:
    assert accepted_encodings(value) == expected


def test_encoding_in_key() -> None:
    policy = legacy()
    gz = key(policy, req(headers=[("Accept-Encoding", "gzip, deflate")]))
    both = key(policy, req(headers=[("Accept-Encoding", "br, gzip")]))
    none = key(policy, req())
    # legacy settings compress with gzip only, so br is not part of their key
    assert (gz.encoding, both.encoding, none.encoding) == ("gzip", "gzip", "")


def test_http10_viewer_has_no_encoding_in_key_nor_toward_the_origin() -> None:
    request = as_received(req(headers=[("Accept-Encoding", "gzip")], http_version="1.0"))
    assert key(legacy(), request).encoding == ""
    assert "accept-encoding" not in names(origin_headers(legacy(), request.headers))


def test_policy_without_encodings_ignores_accept_encoding() -> None:
    policy = KeyPolicy()
    assert key(policy, req(headers=[("Accept-Encoding", "gzip")])).encoding == ""


# --- from_behavior --------------------------------------------------------------------------


def test_no_forwarded_values_means_nothing_forwarded() -> None:
    policy = KeyPolicy.from_behavior(behavior(no_forwarded_values=True))
    request = req(qs="a=1", headers=[("Cookie", "a=1"), ("Accept-Language", "fr")])
    k = key(policy, request)
    assert (k.query, k.headers, k.cookies) == ("", (), "")
    assert origin_querystring(policy, "a=1") == ""


def test_forward_all_headers() -> None:
    policy = legacy(headers=("*",))
    assert policy.forward_all_headers
    assert not policy.collapsible


def test_collapsible_unless_cookies_or_authorization_reach_the_origin() -> None:
    assert legacy().collapsible
    assert legacy(headers=("Accept-Language",)).collapsible
    assert not legacy(cookies="all").collapsible
    assert not legacy(cookies="whitelist", cookie_names=("session",)).collapsible
    assert not legacy(headers=("Authorization",)).collapsible
    assert policy_for(CACHING_OPTIMIZED).collapsible
    assert not policy_for(CACHING_OPTIMIZED, ALL_VIEWER).collapsible  # cookies, Authorization
    amplify = "2e54312d-136d-493c-8eb9-b001f22f67d2"  # Authorization and cookies in the key
    assert not policy_for(amplify).collapsible


def test_managed_cache_policy() -> None:
    policy = KeyPolicy.from_behavior(behavior(cache_policy_id=CACHING_OPTIMIZED))
    assert not policy.legacy
    request = req(qs="a=1", headers=[("Accept-Encoding", "gzip"), ("Cookie", "a=1")])
    k = key(policy, request)
    assert (k.query, k.cookies, k.encoding) == ("", "", "gzip")


def test_amplify_policy_keys_everything_named() -> None:
    policy = KeyPolicy.from_behavior(behavior(cache_policy_id=AMPLIFY))
    request = req(qs="z=1", headers=[("Host", "example.com"), ("Cookie", "b=1; a=2")])
    k = key(policy, request)
    assert (k.query, k.cookies) == ("z=1", "a=2; b=1")
    assert k.headers == (None, None, "example.com")


def test_unknown_policy_ids() -> None:
    with pytest.raises(ValueError, match="cache policy"):
        KeyPolicy.from_behavior(behavior(cache_policy_id="nope"))
    with pytest.raises(ValueError, match="origin request policy"):
        KeyPolicy.from_behavior(
            behavior(cache_policy_id=CACHING_OPTIMIZED, origin_request_policy_id="nope")
        )


# --- Selection ------------------------------------------------------------------------------


def test_selection_modes() -> None:
    assert not Selection(NONE).selects("a")
    assert Selection(ALL).selects("a")
    assert Selection(WHITELIST, ("a",)).selects("a")
    assert not Selection(WHITELIST, ("a",)).selects("b")
    assert Selection(ALL_EXCEPT, ("a",)).selects("b")
    assert not Selection(ALL_EXCEPT, ("a",)).selects("a")
    with pytest.raises(ValueError):
        Selection("some")


def test_selection_wildcards_only_when_asked() -> None:
    assert not Selection(WHITELIST, ("a*",)).selects("ab")
    assert Selection(WHITELIST, ("a*",), wildcards=True).selects("ab")
    assert Selection(WHITELIST, ("a.b",), wildcards=True).selects("a.b")
    assert not Selection(WHITELIST, ("a.b",), wildcards=True).selects("axb")


def test_selection_wildcards_are_cloudfront_globs() -> None:
    """The same matcher as path patterns (edgeproxy/wildcards.py): whole name, '*' any run,
    '?' one character; a viewer's long name is decided without backtracking (the flow test
    test_behavior_flow.py::test_pathological_paths_and_cookie_names_do_not_stall_the_edge)."""
    selection = Selection(WHITELIST, ("*a*a*a*a*b", "s?d_*"), wildcards=True)
    assert selection.selects("aaaab") and selection.selects("xaxaxaxaxb")
    assert not selection.selects("aaab") and not selection.selects("aaaabx")
    assert selection.selects("sid_") and selection.selects("sid_x")
    assert not selection.selects("sd_x") and not selection.selects("Sid_x")
    assert not selection.selects("a" * 40)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (Selection(NONE), Selection(WHITELIST, ("a",)), Selection(WHITELIST, ("a",))),
        (Selection(WHITELIST, ("a",)), Selection(ALL), Selection(ALL)),
        (
            Selection(WHITELIST, ("a",)),
            Selection(WHITELIST, ("b", "a")),
            Selection(WHITELIST, ("a", "b")),
        ),
        (
            Selection(WHITELIST, ("host",)),
            Selection(ALL_EXCEPT, ("host", "x")),
            Selection(ALL_EXCEPT, ("x",)),
        ),
        (
            Selection(ALL_EXCEPT, ("a", "b")),
            Selection(ALL_EXCEPT, ("b", "c")),
            Selection(ALL_EXCEPT, ("b",)),
        ),
    ],
)
def test_selection_union(first: Selection, second: Selection, expected: Selection) -> None:
    assert first.union(second) == expected
    assert second.union(first).selects("a") == expected.selects("a")


# --- origin headers: legacy -----------------------------------------------------------------

VIEWER: Headers = [
    ("Host", "www.example.com"),
    ("User-Agent", "curl/8"),
    ("Accept", "*/*"),
    ("Accept-Language", "fr"),
    ("Referer", "https://x/"),
    ("X-Custom", "1"),
    ("Cache-Control", "no-cache"),
    ("If-None-Match", '"e1"'),
    ("X-Edge-Foo", "1"),
    ("X-Real-IP", "1.2.3.4"),
    ("X-Forwarded-Proto", "https"),
    ("Authorization", "Bearer t"),
    ("Cookie", "b=2; a=1"),
    ("Accept-Encoding", "gzip, br"),
    ("Upgrade", "h2c"),
    ("Proxy-Authorization", "x"),
]


def names(headers: Headers) -> list[str]:
    return [k.lower() for k, _ in headers]


def test_legacy_default_forwarding() -> None:
    out = origin_headers(legacy(), VIEWER)
    assert names(out) == [
        "x-custom",
        "cache-control",
        "if-none-match",
        "user-agent",
        "accept-encoding",
    ]
    assert ("User-Agent", "Amazon CloudFront") in out
    assert ("Accept-Encoding", "gzip") in out  # legacy: gzip only


def test_legacy_named_headers_forwarded() -> None:
    policy = legacy(headers=("Accept-Language", "Host", "User-Agent", "Authorization"))
    out = origin_headers(policy, VIEWER)
    assert ("Accept-Language", "fr") in out
    assert ("Host", "www.example.com") in out
    assert ("User-Agent", "curl/8") in out
    assert ("Authorization", "Bearer t") in out
    assert "accept" not in names(out)


def test_legacy_authorization_by_method() -> None:
    for method, kept in [("GET", False), ("HEAD", False), ("POST", True), ("OPTIONS", True)]:
        out = origin_headers(legacy(), [("Authorization", "x")], method)
        assert ("authorization" in names(out)) is kept, method
    cached_options = legacy(cached_methods=("GET", "HEAD", "OPTIONS"))
    assert "authorization" not in names(origin_headers(cached_options, VIEWER, "OPTIONS"))


def test_websocket_upgrade_kept() -> None:
    assert ("Upgrade", "websocket") in origin_headers(legacy(), [("Upgrade", "websocket")])


def test_cookie_header_rebuilt_sorted_or_dropped() -> None:
    assert ("Cookie", "a=1; b=2") in origin_headers(legacy(cookies="all"), VIEWER)
    only_a = legacy(cookies="whitelist", cookie_names=("a",))
    assert ("Cookie", "a=1") in origin_headers(only_a, VIEWER)
    only_z = legacy(cookies="whitelist", cookie_names=("z",))
    assert "cookie" not in names(origin_headers(only_z, VIEWER))
    assert "cookie" not in names(origin_headers(legacy(), VIEWER))


def test_forward_all_headers_forwards_everything() -> None:
    out = origin_headers(legacy(headers=("*",)), VIEWER)
    for name in ("host", "user-agent", "accept", "referer", "x-edge-foo", "authorization"):
        assert name in names(out)
    assert ("User-Agent", "Amazon CloudFront") not in out


def test_accept_encoding_dropped_when_neither_supported() -> None:
    out = origin_headers(KeyPolicy(), [("Accept-Encoding", "deflate")])
    assert "accept-encoding" not in names(out)
    out = origin_headers(legacy(), [("Accept-Encoding", "deflate")])
    assert ("Accept-Encoding", "identity") in out


def test_no_accept_encoding_forwarded_when_the_viewer_sent_none() -> None:
    """Reference 7.9: identity for an Accept-Encoding without gzip or br, none for none."""
    for policy in (legacy(), KeyPolicy(), policy_for(CACHING_OPTIMIZED)):
        assert "accept-encoding" not in names(origin_headers(policy, [("Host", "a")]))


# --- origin headers: policies -----------------------------------------------------------------


def policy_for(cache_policy_id: str, orp: str | None = None) -> KeyPolicy:
    return KeyPolicy.from_behavior(
        behavior(cache_policy_id=cache_policy_id, origin_request_policy_id=orp)
    )


def test_cache_policy_without_orp_sends_almost_nothing() -> None:
    viewer = [*VIEWER, ("Content-Type", "text/plain"), ("Content-Length", "3")]
    out = origin_headers(policy_for(CACHING_OPTIMIZED), viewer)
    assert names(out) == ["content-type", "content-length", "user-agent", "accept-encoding"]


def test_all_viewer_orp() -> None:
    policy = policy_for(CACHING_DISABLED, ALL_VIEWER)
    out = origin_headers(policy, VIEWER)
    assert ("Host", "www.example.com") in out
    assert ("Cookie", "a=1; b=2") in out
    assert origin_querystring(policy, "x=1") == "x=1"
    assert not policy.collapsible


def test_all_viewer_except_host_orp() -> None:
    out = origin_headers(policy_for(CACHING_DISABLED, ALL_VIEWER_EXCEPT_HOST), VIEWER)
    assert "host" not in names(out)
    assert ("Accept-Language", "fr") in out


def test_cors_orp_adds_origin_header() -> None:
    out = origin_headers(policy_for(CACHING_OPTIMIZED, CORS_CUSTOM), [("Origin", "https://a")])
    assert ("Origin", "https://a") in out


def test_headers_selection_lowercases() -> None:
    assert headers_selection(WHITELIST, ("X-A",)).names == ("x-a",)


@pytest.mark.parametrize("cache_id", sorted(MANAGED_CACHE_POLICIES))
@pytest.mark.parametrize("orp_id", [None, *sorted(MANAGED_ORIGIN_REQUEST_POLICIES)])
def test_every_managed_pair_builds_a_key_and_ttls(cache_id: str, orp_id: str | None) -> None:
    policy = policy_for(cache_id, orp_id)
    cached = MANAGED_CACHE_POLICIES[cache_id]
    assert policy.encodings == cached.key.encodings
    assert not policy.legacy
    ttl = TtlPolicy.from_behavior(behavior(cache_policy_id=cache_id))
    assert (ttl.min_ttl, ttl.default_ttl, ttl.max_ttl) == (
        cached.min_ttl,
        cached.default_ttl,
        cached.max_ttl,
    )
