"""Where edgeproxy's cache followed RFC 9111 and CloudFront does not, through a real edge and a
real origin: Vary, the cached methods, the cache key's host, and the header fields a
``no-cache="..."`` / ``private="..."`` names. Each test cites the Developer Guide page
(https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/<page>.html) it follows;
docs/fidelity.md lists the corrections to the reference notes."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import OriginResponse, RecordingOrigin, StartEdge, distribution
from test_collapsing import on_policies
from test_https import https_client, https_distribution

MISS, HIT = "Miss from cloudfront", "Hit from cloudfront"
NO_HEADERS: dict[str, Any] = {"query_string": False, "cookies": {"forward": "none"}}


def _legacy(origin: RecordingOrigin, **behavior: Any) -> dict[str, Any]:
    return distribution(origin.port, **behavior)


# -- Vary ---------------------------------------------------------------------------------------
# RequestAndResponseBehaviorCustomOrigin, "HTTP response headers that CloudFront removes or
# replaces" → Vary: CloudFront keeps Accept-Encoding and Cookie, the headers it forwards, and
# User-Agent when a CloudFront-Is-*-Viewer header is forwarded; it removes any other value.
# understanding-the-cache-key: the cache key is the distribution's domain, the path and what
# the cache policy adds; controlling-origin-requests: what an origin request policy adds is
# "not included in the cache key". So a Vary never splits an object: the key alone does.


async def test_vary_on_a_header_that_is_not_forwarded_is_removed_and_splits_nothing(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/ua"] = OriginResponse(
        headers={
            "Cache-Control": "max-age=60",
            "Vary": "User-Agent, Accept-Encoding, Cookie, X-Other",
        }
    )
    viewer = await start_edge(_legacy(origin))
    first = await viewer.get("/ua", headers={"User-Agent": "browser-a"})
    second = await viewer.get("/ua", headers={"User-Agent": "browser-b"})
    assert [first.headers["x-cache"], second.headers["x-cache"]] == [MISS, HIT]
    assert first.text == second.text
    assert len(origin.requests_for("/ua")) == 1  # one object for both User-Agents
    assert first.headers.get_list("vary") == ["Accept-Encoding, Cookie"]
    assert second.headers.get_list("vary") == ["Accept-Encoding, Cookie"]


async def test_vary_on_a_header_only_the_origin_request_policy_forwards_is_kept_not_keyed(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/v"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Vary": "X-Viewer"}, echo="X-Viewer"
    )
    document = on_policies(
        origin.port,
        cache_policy={
            "name": "path-only",
            "min_ttl": 0,
            "default_ttl": 60,
            "max_ttl": 600,
            "parameters_in_cache_key_and_forwarded_to_origin": {
                "headers_config": {"header_behavior": "none"},
                "cookies_config": {"cookie_behavior": "none"},
                "query_strings_config": {"query_string_behavior": "none"},
            },
        },
        origin_request_policy={
            "name": "x-viewer",
            "headers_config": {"header_behavior": "whitelist", "headers": {"items": ["X-Viewer"]}},
            "cookies_config": {"cookie_behavior": "none"},
            "query_strings_config": {"query_string_behavior": "none"},
        },
    )
    viewer = await start_edge(document)
    alice = await viewer.get("/v", headers={"X-Viewer": "alice"})
    bob = await viewer.get("/v", headers={"X-Viewer": "bob"})
    assert (alice.text, alice.headers["x-cache"]) == ("page for alice", MISS)
    assert (bob.text, bob.headers["x-cache"]) == ("page for alice", HIT)
    assert bob.headers["vary"] == "X-Viewer"  # forwarded: kept toward the viewer
    assert len(origin.requests_for("/v")) == 1


async def test_vary_user_agent_is_kept_when_a_device_header_is_forwarded(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/d"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Vary": "User-Agent, X-Other"}
    )
    forwarded = {**NO_HEADERS, "headers": ["CloudFront-Is-Mobile-Viewer"]}
    viewer = await start_edge(_legacy(origin, forwarded_values=forwarded))
    response = await viewer.get("/d", headers={"User-Agent": "Mozilla/5.0 (iPhone)"})
    assert response.headers.get_list("vary") == ["User-Agent"]


async def test_vary_star_with_a_min_ttl_is_removed_and_cached(
    origin: RecordingOrigin, start_edge: StartEdge
):
    # RequestAndResponseBehaviorCustomOrigin, "Content negotiation": Vary:* with Minimum TTL 0
    # sends every request to the origin; with any other Minimum TTL it is processed like the
    # other Vary values (removed).
    origin.responses["/star"] = OriginResponse(headers={"Cache-Control": "max-age=60", "Vary": "*"})
    viewer = await start_edge(_legacy(origin, min_ttl=1))
    first = await viewer.get("/star")
    second = await viewer.get("/star")
    assert [first.headers["x-cache"], second.headers["x-cache"]] == [MISS, HIT]
    assert "vary" not in second.headers
    origin.responses["/star0"] = origin.responses["/star"]
    plain = await start_edge(_legacy(origin))
    await plain.get("/star0")
    again = await plain.get("/star0")
    assert (again.headers["x-cache"], again.headers["vary"]) == (MISS, "*")


async def test_vary_star_with_min_ttl_0_is_fetched_again_without_conditional_headers(
    origin: RecordingOrigin, start_edge: StartEdge
):
    # RequestAndResponseBehaviorCustomOrigin, "Content negotiation": CloudFront "doesn't
    # include any conditional headers, such as If-None-Match or If-Modified-Since", so the
    # origin returns the whole object on every request.
    origin.responses["/star"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Vary": "*"}, etag='"v1"'
    )
    viewer = await start_edge(_legacy(origin))
    await viewer.get("/star")
    again = await viewer.get("/star")
    assert (again.status_code, again.headers["x-cache"]) == (200, MISS)
    assert [r.headers.get("If-None-Match") for r in origin.requests_for("/star")] == [None, None]


# -- Methods ------------------------------------------------------------------------------------
# RequestAndResponseBehaviorCustomOrigin, "HTTP methods": CloudFront forwards GET, HEAD, OPTIONS,
# ... to the origin, "always caches responses to GET and HEAD requests", caches OPTIONS when
# configured and nothing else. understanding-the-cache-key: OPTIONS is in the key (cached apart
# from GET and HEAD). Invalidation ("If you need to remove a file from CloudFront edge caches
# before it expires": invalidate it, or version its name) and expiry are the only ways documented
# for an object to leave the cache; RFC 9111 4.4 (unsafe methods invalidate) is not among them.


async def test_head_answers_are_cached_and_a_get_fetches_its_own_body(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(_legacy(origin))
    heads = [await viewer.request("HEAD", "/h") for _ in range(2)]
    assert [r.headers["x-cache"] for r in heads] == [MISS, HIT]
    assert [r.method for r in origin.requests_for("/h")] == ["HEAD"]
    assert heads[1].headers["content-length"] == str(len("origin body for /h"))
    got = await viewer.get("/h")  # a HEAD's answer has no body: never a GET's
    assert (got.headers["x-cache"], got.text) == (MISS, "origin body for /h")
    assert [r.method for r in origin.requests_for("/h")] == ["HEAD", "GET"]
    for method in ("HEAD", "GET"):  # the GET's object answers both
        assert (await viewer.request(method, "/h")).headers["x-cache"] == HIT
    assert len(origin.requests_for("/h")) == 2


async def test_options_is_cached_apart_when_cached_methods_include_it(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(_legacy(origin, cached_methods=["GET", "HEAD", "OPTIONS"]))
    options = [await viewer.request("OPTIONS", "/o") for _ in range(2)]
    assert [r.headers["x-cache"] for r in options] == [MISS, HIT]
    got = await viewer.get("/o")
    assert got.headers["x-cache"] == MISS  # OPTIONS is in the key: not the GET's object
    assert [r.method for r in origin.requests_for("/o")] == ["OPTIONS", "GET"]


async def test_options_is_not_cached_unless_cached_methods_include_it(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(_legacy(origin))
    options = [await viewer.request("OPTIONS", "/o") for _ in range(2)]
    assert [r.headers["x-cache"] for r in options] == [MISS, MISS]


async def test_an_unsafe_method_does_not_evict_the_cached_get(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(_legacy(origin))
    await viewer.get("/doc")
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert (await viewer.request(method, "/doc", content=b"x")).status_code == 200
    again = await viewer.get("/doc")
    assert again.headers["x-cache"] == HIT
    assert [r.method for r in origin.requests_for("/doc")] == [
        "GET",
        "POST",
        "PUT",
        "DELETE",
        "PATCH",
    ]


# -- The cache key's host -------------------------------------------------------------------------
# understanding-the-cache-key, "The default cache key": the distribution's domain name (e.g.
# d111111abcdef8.cloudfront.net) and the path, whatever Host the viewer named: its aliases and
# both schemes share objects. With Host in the key, the Host value keys it; the port a viewer
# adds to it names a listener, not a site (our reading, [inf]).


async def test_aliases_and_both_schemes_share_one_object(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(https_distribution(origin, forwarded_values=NO_HEADERS))
    plain = await viewer.get("/page")
    async with https_client(viewer) as client:
        secure = await client.get(viewer.running.url("/page", "https"))
    alias = await viewer.get("/page", headers={"Host": "www.example.com"})
    assert [r.headers["x-cache"] for r in (plain, secure, alias)] == [MISS, HIT, HIT]
    assert len(origin.requests_for("/page")) == 1


async def test_host_in_the_key_is_the_viewers_host_without_its_port(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(
        https_distribution(origin, forwarded_values={**NO_HEADERS, "headers": ["Host"]})
    )
    www = await viewer.get("/page", headers={"Host": "www.example.com"})
    www_port = await viewer.get("/page", headers={"Host": "WWW.example.com:8443"})
    apex = await viewer.get("/page", headers={"Host": "example.com"})
    assert [r.headers["x-cache"] for r in (www, www_port, apex)] == [MISS, HIT, MISS]
    assert len(origin.requests_for("/page")) == 2


# -- no-cache="Set-Cookie" / private="Set-Cookie" -----------------------------------------------
# Cookies ("Cache content based on cookies") and RequestAndResponseBehaviorCustomOrigin
# ("Cookies"): with cookies forwarded CloudFront caches Set-Cookie with the object and replays
# it "unless you configure your origin to exclude it with Cache-Control: no-cache="Set-Cookie"".
# RFC 9111 5.2.2.4 / 5.2.2.7: the named fields are not stored; the rest of the answer is.


async def _set_cookie_twice(
    origin: RecordingOrigin, start_edge: StartEdge, cache_control: str
) -> tuple[httpx.Response, httpx.Response]:
    origin.responses["/c"] = OriginResponse(
        headers={"Cache-Control": cache_control, "Set-Cookie": "session=abc", "X-Kept": "1"}
    )
    cookies = {"query_string": False, "cookies": {"forward": "all"}}
    viewer = await start_edge(_legacy(origin, forwarded_values=cookies))
    first = await viewer.get("/c")
    viewer.client.cookies.clear()  # the second viewer holds no cookie: the same cache key
    return first, await viewer.get("/c")


async def test_no_cache_set_cookie_is_not_replayed_on_hits(
    origin: RecordingOrigin, start_edge: StartEdge
):
    first, second = await _set_cookie_twice(origin, start_edge, 'max-age=60, no-cache="Set-Cookie"')
    assert (first.headers["x-cache"], first.headers["set-cookie"]) == (MISS, "session=abc")
    assert second.headers["x-cache"] == HIT
    assert "set-cookie" not in second.headers
    assert second.headers["x-kept"] == "1"
    assert len(origin.requests_for("/c")) == 1


async def test_private_set_cookie_caches_the_rest_of_the_answer(
    origin: RecordingOrigin, start_edge: StartEdge
):
    first, second = await _set_cookie_twice(origin, start_edge, 'max-age=60, private="Set-Cookie"')
    assert (first.headers["x-cache"], first.headers["set-cookie"]) == (MISS, "session=abc")
    assert (second.headers["x-cache"], second.headers.get("set-cookie")) == (HIT, None)
    assert len(origin.requests_for("/c")) == 1
