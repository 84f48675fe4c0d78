"""Cache semantics through a real edge (issue 3/6): revalidation, stale serving, collapsing,
error caching, custom error pages, origin group failover. Each test asserts the response,
the X-Cache value and how many requests the origin received."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from conftest import (
    FakeClock,
    OriginResponse,
    RecordingOrigin,
    StartEdge,
    distribution,
    start_recording_origin,
)


async def test_stale_object_is_revalidated_and_refreshed_by_304(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/r"] = OriginResponse(headers={"Cache-Control": "max-age=10"}, etag='"v1"')
    viewer = await start_edge(distribution(origin.port))
    first = await viewer.get("/r")
    assert first.headers["x-cache"] == "Miss from cloudfront"
    clock.advance(11)
    refreshed = await viewer.get("/r")
    assert refreshed.status_code == 200
    assert refreshed.text == "origin body for /r"
    assert refreshed.headers["x-cache"] == "RefreshHit from cloudfront"
    revalidation = origin.requests_for("/r")[-1]
    assert revalidation.headers["If-None-Match"] == '"v1"'
    clock.advance(5)
    hit = await viewer.get("/r")
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert hit.headers["age"] == "5"  # the clock restarted at the refresh
    assert len(origin.requests_for("/r")) == 2


async def test_changed_object_replaces_the_stale_one(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/c"] = OriginResponse(
        headers={"Cache-Control": "max-age=10"}, etag='"v1"', body="one"
    )
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/c")
    origin.responses["/c"] = OriginResponse(
        headers={"Cache-Control": "max-age=10"}, etag='"v2"', body="two"
    )
    clock.advance(11)
    changed = await viewer.get("/c")
    assert changed.text == "two"
    assert changed.headers["x-cache"] == "Miss from cloudfront"
    assert (await viewer.get("/c")).text == "two"


async def test_viewer_conditionals_are_not_forwarded_on_a_cacheable_miss(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/v"] = OriginResponse(etag='"x"')
    viewer = await start_edge(distribution(origin.port))
    response = await viewer.get("/v", headers={"If-None-Match": '"x"', "Range": "bytes=0-1"})
    assert origin.requests_for("/v")[0].headers.get("If-None-Match") is None
    # A Range goes on widened to the whole object (DG RangeGETs: "may request a larger range").
    assert origin.requests_for("/v")[0].headers.get("Range") == "bytes=0-"
    assert response.headers["etag"] == '"x"'


async def test_stale_while_revalidate_serves_stale_and_refreshes_once(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/s"] = OriginResponse(
        headers={"Cache-Control": "max-age=10, stale-while-revalidate=60"}, body="old"
    )
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/s")
    origin.responses["/s"] = OriginResponse(
        headers={"Cache-Control": "max-age=10, stale-while-revalidate=60"}, body="new"
    )
    clock.advance(20)
    stale = await viewer.get("/s")
    assert stale.text == "old"
    assert stale.headers["x-cache"] == "Hit from cloudfront"
    for _ in range(50):  # the background refresh finishes on the edge's loop
        if len(origin.requests_for("/s")) == 2 and (await viewer.get("/s")).text == "new":
            break
        await asyncio.sleep(0.01)
    assert (await viewer.get("/s")).text == "new"
    assert len(origin.requests_for("/s")) == 2


async def test_stale_if_error_serves_the_stale_object_when_the_origin_fails(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/e"] = OriginResponse(
        headers={"Cache-Control": "max-age=10, stale-if-error=300"}, body="good"
    )
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/e")
    origin.responses["/e"] = OriginResponse(status=503, headers={}, body="down")
    clock.advance(20)
    response = await viewer.get("/e")
    assert response.status_code == 200
    assert response.text == "good"
    assert response.headers["x-cache"] == "RefreshHit from cloudfront"
    clock.advance(400)  # past stale-if-error: the error is passed on
    assert (await viewer.get("/e")).status_code == 503


async def test_stale_if_error_zero_turns_stale_serving_off(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/z"] = OriginResponse(
        headers={"Cache-Control": "max-age=10, stale-if-error=0"}
    )
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/z")
    origin.responses["/z"] = OriginResponse(status=502, headers={}, body="bad gateway")
    clock.advance(20)
    response = await viewer.get("/z")
    assert response.status_code == 502
    assert response.text == "bad gateway"


async def test_concurrent_misses_collapse_into_one_origin_request(
    origin: RecordingOrigin, start_edge: StartEdge
):
    gate = asyncio.Event()
    origin.responses["/hot"] = OriginResponse(gate=gate)
    viewer = await start_edge(distribution(origin.port))
    requests = [asyncio.ensure_future(viewer.get("/hot")) for _ in range(20)]
    while not origin.seen:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    gate.set()
    responses = await asyncio.gather(*requests)
    assert {r.status_code for r in responses} == {200}
    caches = sorted(r.headers["x-cache"] for r in responses)
    assert caches.count("Miss from cloudfront") == 1
    assert caches.count("Hit from cloudfront") == 19
    assert len(origin.requests_for("/hot")) == 1


async def test_origin_404_is_cached_for_the_error_caching_ttl(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/gone"] = OriginResponse(status=404, headers={}, body="no such page")
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/gone")
    clock.advance(9)
    cached = await viewer.get("/gone")
    assert cached.status_code == 404
    assert cached.headers["x-cache"] == "Error from cloudfront"
    assert len(origin.requests_for("/gone")) == 1
    clock.advance(2)  # the 10 s default error caching min TTL is over
    await viewer.get("/gone")
    assert len(origin.requests_for("/gone")) == 2


def with_error_pages(origin: RecordingOrigin, pages: list[dict[str, Any]]) -> dict[str, Any]:
    document = distribution(origin.port)
    document["distribution"]["custom_error_response"] = pages
    return document


async def test_custom_error_page_replaces_an_origin_404(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/missing"] = OriginResponse(status=404, headers={}, body="plain 404")
    origin.responses["/errors/404.html"] = OriginResponse(body="<h1>our own 404 page</h1>")
    page = {"error_code": 404, "response_code": 200, "response_page_path": "/errors/404.html"}
    viewer = await start_edge(with_error_pages(origin, [page]))
    response = await viewer.get("/missing")
    assert response.status_code == 200
    assert response.text == "<h1>our own 404 page</h1>"
    assert response.headers["x-cache"] == "Error from cloudfront"
    origin.responses["/also-missing"] = OriginResponse(status=404, headers={}, body="plain")
    again = await viewer.get("/also-missing")
    assert again.status_code == 200
    assert again.text == "<h1>our own 404 page</h1>"
    assert len(origin.requests_for("/errors/404.html")) == 1  # the page itself is cached


async def test_custom_error_page_when_the_origin_is_down(start_edge: StartEdge, origin):
    """The page comes from a behavior with a healthy origin; the default one is down."""
    down = _refused_port()
    document = distribution(down)
    document["distribution"]["origin"][0]["connection_attempts"] = 1
    document["distribution"]["origin"].append(
        {
            "origin_id": "pages",
            "domain_name": "127.0.0.1",
            "custom_origin_config": {
                "http_port": origin.port,
                "https_port": 443,
                "origin_protocol_policy": "http-only",
                "origin_ssl_protocols": ["TLSv1.2"],
            },
        }
    )
    base = dict(document["distribution"]["default_cache_behavior"])
    document["distribution"]["ordered_cache_behavior"] = [
        {**base, "path_pattern": "/errors/*", "target_origin_id": "pages"}
    ]
    document["distribution"]["custom_error_response"] = [
        {"error_code": 502, "response_code": 503, "response_page_path": "/errors/down.html"}
    ]
    origin.responses["/errors/down.html"] = OriginResponse(body="we will be right back")
    viewer = await start_edge(document)
    response = await viewer.get("/anything")
    assert response.status_code == 503
    assert response.text == "we will be right back"
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert (await viewer.stats())["cache"]["stores"] == 1  # the page, not the failure


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def origin_group(primary_port: int, secondary_port: int, codes: list[int]) -> dict[str, Any]:
    document = distribution(primary_port, target_origin_id="group")
    origins = document["distribution"]["origin"]
    origins[0]["connection_attempts"] = 1
    origins.append({**origins[0], "origin_id": "backup"})
    origins[1]["custom_origin_config"] = {
        **origins[0]["custom_origin_config"],
        "http_port": secondary_port,
    }
    document["distribution"]["origin_group"] = [
        {
            "origin_id": "group",
            "failover_criteria": {"status_codes": codes},
            "member": [{"origin_id": "test"}, {"origin_id": "backup"}],
        }
    ]
    return document


async def test_origin_group_fails_over_on_a_listed_status(
    origin: RecordingOrigin, start_edge: StartEdge
):
    backup = RecordingOrigin()
    async with start_recording_origin(backup):
        origin.responses["/f"] = OriginResponse(status=503, headers={}, body="primary down")
        viewer = await start_edge(origin_group(origin.port, backup.port, [500, 502, 503, 504]))
        response = await viewer.get("/f")
        assert response.status_code == 200
        assert response.text == "origin body for /f"
        assert len(origin.requests_for("/f")) == 1
        assert len(backup.requests_for("/f")) == 1

        origin.responses["/p"] = OriginResponse(status=404, headers={}, body="not listed")
        assert (await viewer.get("/p")).status_code == 404  # 404 is not in the criteria
        assert backup.requests_for("/p") == []

        posted = await viewer.request("POST", "/f", content=b"x")
        assert posted.status_code == 503  # POST never fails over
        assert [r.method for r in backup.requests_for("/f")] == ["GET"]


async def test_origin_group_fails_over_on_connection_failure(start_edge: StartEdge):
    backup = RecordingOrigin()
    async with start_recording_origin(backup):
        viewer = await start_edge(origin_group(_refused_port(), backup.port, [503]))
        response = await viewer.get("/g")
        assert response.status_code == 200
        assert response.headers["x-cache"] == "Miss from cloudfront"
        assert len(backup.requests_for("/g")) == 1


async def test_must_revalidate_forbids_serving_stale_on_error(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/mr"] = OriginResponse(
        headers={"Cache-Control": "max-age=10, must-revalidate"}, body="fine"
    )
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/mr")
    origin.responses["/mr"] = OriginResponse(status=503, headers={}, body="down")
    clock.advance(20)
    response = await viewer.get("/mr")
    assert response.status_code == 503
    assert response.text == "down"


async def test_set_cookie_kept_and_replayed_when_cookies_are_forwarded(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/ck"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Set-Cookie": "session=abc"}
    )
    forwarding = {"query_string": False, "cookies": {"forward": "all"}}
    viewer = await start_edge(distribution(origin.port, forwarded_values=forwarding))
    assert (await viewer.get("/ck")).headers["set-cookie"] == "session=abc"
    viewer.client.cookies.clear()  # a new viewer: no cookie, so the same cache key
    hit = await viewer.get("/ck")
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert hit.headers["set-cookie"] == "session=abc"

    stripping = await start_edge(distribution(origin.port))
    assert "set-cookie" not in (await stripping.get("/ck")).headers


async def test_authorized_answers_are_shared_only_when_the_origin_says_so(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/private"] = OriginResponse(headers={"Cache-Control": "max-age=60"})
    origin.responses["/shared"] = OriginResponse(headers={"Cache-Control": "public, max-age=60"})
    viewer = await start_edge(distribution(origin.port))
    auth = {"Authorization": "Bearer abc"}
    for path, second in (("/private", "Miss from cloudfront"), ("/shared", "Hit from cloudfront")):
        await viewer.get(path, headers=auth)
        assert (await viewer.get(path, headers=auth)).headers["x-cache"] == second


async def test_age_from_the_origin_counts_toward_freshness(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/aged"] = OriginResponse(
        headers={"Cache-Control": "max-age=100", "Age": "70"}
    )
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/aged")
    clock.advance(20)
    hit = await viewer.get("/aged")
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert hit.headers.get_list("age") == ["90"]  # one Age: the origin's 70 plus 20 here
    clock.advance(11)
    assert (await viewer.get("/aged")).headers["x-cache"] == "Miss from cloudfront"


async def test_the_key_not_vary_selects_between_stored_variants(
    origin: RecordingOrigin, start_edge: StartEdge
):
    # DG understanding-the-cache-key: a header splits objects when it is in the key (here the
    # legacy forwarded headers), never because the origin's Vary names it (test_cache_fidelity).
    origin.responses["/lang"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Vary": "Accept-Language"}
    )
    keyed = {"query_string": False, "cookies": {"forward": "none"}, "headers": ["Accept-Language"]}
    viewer = await start_edge(distribution(origin.port, forwarded_values=keyed))
    await viewer.get("/lang", headers={"Accept-Language": "de"})
    same = await viewer.get("/lang", headers={"Accept-Language": "de"})
    assert same.headers["x-cache"] == "Hit from cloudfront"
    assert same.headers["vary"] == "Accept-Language"  # forwarded: kept toward the viewer
    other = await viewer.get("/lang", headers={"Accept-Language": "fr"})
    assert other.headers["x-cache"] == "Miss from cloudfront"
    assert len(origin.requests_for("/lang")) == 2


async def test_invalid_expires_means_already_expired(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/exp"] = OriginResponse(headers={"Expires": "Thu, 18 Aug 50 02:01:18 GMT"})
    viewer = await start_edge(distribution(origin.port, default_ttl=3600))
    await viewer.get("/exp")
    assert (await viewer.get("/exp")).headers["x-cache"] == "Miss from cloudfront"


async def test_custom_error_page_for_a_geo_blocked_viewer(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = with_error_pages(
        origin, [{"error_code": 403, "response_code": 403, "response_page_path": "/blocked.html"}]
    )
    document["distribution"]["restrictions"] = {
        "geo_restriction": {"restriction_type": "blacklist", "locations": ["DE"]}
    }
    document["edge"]["geo"] = {"trust_viewer_headers": True}
    origin.responses["/blocked.html"] = OriginResponse(body="not in your country, sorry")
    viewer = await start_edge(document)
    response = await viewer.get("/page", headers={"CloudFront-Viewer-Country": "DE"})
    assert response.status_code == 403
    assert response.text == "not in your country, sorry"
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert origin.requests_for("/page") == []
    allowed = await viewer.get("/page", headers={"CloudFront-Viewer-Country": "FR"})
    assert allowed.status_code == 200
