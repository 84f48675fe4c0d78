"""Flow tests: a real origin and a real edge on random loopback ports. Each asserts the
response, the stages that ran (in order, from the admin API) and what the origin saw."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import FakeClock, OriginResponse, RecordingOrigin, StartEdge, distribution, handler

ALL_FOUR = [
    {"event_type": "viewer-request", "handler": handler("flow_passthrough.py")},
    {"event_type": "origin-request", "handler": handler("flow_passthrough.py")},
    {"event_type": "origin-response", "handler": handler("flow_mark.py:origin_response")},
    {"event_type": "viewer-response", "handler": handler("flow_mark.py:viewer_response")},
]


def with_hooks(
    origin: RecordingOrigin, hooks: list[dict[str, Any]], **behavior: Any
) -> dict[str, Any]:
    return distribution(origin.port, lambda_function_association=hooks, **behavior)


async def test_miss_then_hit_run_the_stages_in_order(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(with_hooks(origin, ALL_FOUR))

    miss = await viewer.get("/page")
    assert miss.status_code == 200
    assert miss.text == "origin body for /page"
    assert miss.headers["x-cache"] == "Miss from cloudfront"
    assert miss.headers["x-origin-response"] == "ran"
    assert miss.headers["x-viewer-response"] == "ran"
    assert "age" not in miss.headers
    assert await viewer.last_stages() == [
        "viewer-request",
        "origin-request",
        "origin-response",
        "viewer-response",
    ]

    hit = await viewer.get("/page")
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert hit.headers["age"] == "0"
    assert hit.headers["x-origin-response"] == "ran"  # stored as origin-response returned it
    assert hit.text == "origin body for /page"
    assert await viewer.last_stages() == ["viewer-request", "viewer-response"]
    assert len(origin.requests_for("/page")) == 1
    stats = await viewer.stats()
    assert stats["cache"]["hits"] == 1
    assert stats["cache"]["misses"] == 1


async def test_viewer_response_changes_are_not_cached(
    origin: RecordingOrigin, start_edge: StartEdge
):
    hooks = [{"event_type": "viewer-response", "handler": handler("flow_mark.py:viewer_response")}]
    viewer = await start_edge(with_hooks(origin, hooks))
    await viewer.get("/a")
    entries = (await viewer.client.get(f"{viewer.running.admin_url}/cache")).json()
    assert len(entries) == 1
    hit = await viewer.get("/a")
    assert hit.headers["x-viewer-response"] == "ran"
    assert hit.headers.get_list("x-viewer-response") == ["ran"]  # not stored, so added once


async def test_viewer_request_generated_response(origin: RecordingOrigin, start_edge: StartEdge):
    hooks = [
        {"event_type": "viewer-request", "handler": handler("flow_generate.py:viewer_request")},
        {"event_type": "viewer-response", "handler": handler("flow_mark.py:viewer_response")},
    ]
    viewer = await start_edge(with_hooks(origin, hooks))
    for _ in range(2):
        response = await viewer.get("/generated")
        assert response.status_code == 200
        assert response.text == "generated at viewer-request"
        assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
        assert "x-viewer-response" not in response.headers
        assert await viewer.last_stages() == ["viewer-request"]
    assert origin.seen == []
    assert (await viewer.stats())["cache"]["stores"] == 0


async def test_origin_request_generated_response_is_cached(
    origin: RecordingOrigin, start_edge: StartEdge
):
    hooks = [
        {"event_type": "origin-request", "handler": handler("flow_generate.py:origin_request")},
        {"event_type": "origin-response", "handler": handler("flow_mark.py:origin_response")},
        {"event_type": "viewer-response", "handler": handler("flow_mark.py:viewer_response")},
    ]
    viewer = await start_edge(with_hooks(origin, hooks))

    first = await viewer.get("/made")
    assert first.text == "generated at origin-request for /made"
    assert first.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert "x-origin-response" not in first.headers
    assert first.headers["x-viewer-response"] == "ran"
    assert await viewer.last_stages() == ["origin-request", "viewer-response"]

    second = await viewer.get("/made")
    assert second.text == "generated at origin-request for /made"
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert await viewer.last_stages() == ["viewer-response"]
    assert origin.seen == []


async def test_origin_error_skips_viewer_response(origin: RecordingOrigin, start_edge: StartEdge):
    origin.responses["/missing"] = OriginResponse(status=404, headers={}, body="nope")
    viewer = await start_edge(with_hooks(origin, ALL_FOUR))
    response = await viewer.get("/missing")
    assert response.status_code == 404
    assert response.text == "nope"
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert response.headers["x-origin-response"] == "ran"
    assert "x-viewer-response" not in response.headers
    assert await viewer.last_stages() == ["viewer-request", "origin-request", "origin-response"]


async def test_async_handler_runs(origin: RecordingOrigin, start_edge: StartEdge):
    hooks = [
        {"event_type": "viewer-response", "handler": handler("flow_mark.py:async_viewer_response")}
    ]
    viewer = await start_edge(with_hooks(origin, hooks))
    response = await viewer.get("/x")
    assert response.headers["x-async"] == "yes"


async def test_cloudfront_headers_to_viewer_and_origin(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    response = await viewer.get(
        "/h",
        headers={
            "X-Forwarded-For": "203.0.113.9",
            "User-Agent": "curl/8.0",
            "Connection": "keep-alive, X-Private",
        },
    )
    assert re.fullmatch(
        r"1\.1 [0-9a-f]{32}\.cloudfront\.net \(CloudFront\)", response.headers["via"]
    )
    assert response.headers["x-amz-cf-pop"] == "LHR50-C1"
    cf_id = response.headers["x-amz-cf-id"]
    assert len(cf_id) == 56 and cf_id.endswith("==")
    assert "transfer-encoding" not in response.headers

    seen = origin.seen[-1]
    assert seen.headers["Host"] == "127.0.0.1"
    assert seen.headers["User-Agent"] == "Amazon CloudFront"
    assert seen.headers["X-Forwarded-For"] == "203.0.113.9,127.0.0.1"
    assert seen.headers["Via"] == response.headers["via"]
    assert seen.headers["X-Amz-Cf-Id"] == cf_id
    assert "X-Private" not in seen.headers


ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"  # managed origin request policy
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_HEADERS = {"query_string": False, "headers": ["*"], "cookies": {"forward": "none"}}
FORWARDING = {
    "legacy-none": {},
    "legacy-all-headers": {"forwarded_values": ALL_HEADERS},
    "policy-all-viewer": {
        "forwarded_values": None,
        "cache_policy_id": CACHING_DISABLED,
        "origin_request_policy_id": ALL_VIEWER,
    },
    "origin-request-handler": {
        "lambda_function_association": [
            {"event_type": "origin-request", "handler": handler("passthrough.py")}
        ]
    },
}


@pytest.mark.parametrize("forwarding", list(FORWARDING))
async def test_edge_headers_replace_the_viewers_of_the_same_name(
    forwarding: str, origin: RecordingOrigin, start_edge: StartEdge
):
    # Reference 6.2 and the DG page add-origin-custom-headers: "If a header is present,
    # CloudFront overwrites the header value before forwarding the request to the origin."
    document = distribution(origin.port, **FORWARDING[forwarding])
    document["distribution"]["origin"][0]["custom_header"] = [
        {"name": "X-Origin-Secret", "value": "abc"}
    ]
    viewer = await start_edge(document)
    response = await viewer.get(
        "/secret",
        headers=[
            ("X-Origin-Secret", "forged"),  # as configured, and in other cases
            ("X-Amz-Cf-Id", "forged"),
            ("x-origin-secret", "forged again"),
            ("X-Kept", "1"),
        ],
    )
    assert response.status_code == 200
    seen = origin.seen[-1].headers
    assert seen.getall("X-Origin-Secret") == ["abc"]
    assert seen.getall("X-Amz-Cf-Id") == [response.headers["x-amz-cf-id"]]
    if forwarding != "legacy-none":  # legacy without named headers forwards custom ones too
        assert seen.getall("X-Kept") == ["1"]


async def test_a_repeated_header_reaches_the_origin_whole_whatever_its_case(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    repeated = [("X-Rep", "a"), ("x-rep", "b"), ("X-REP", "c"), ("X-Rep", "d")]
    assert (await viewer.get("/repeated", headers=repeated)).status_code == 200
    assert origin.seen[-1].headers.getall("X-Rep") == ["a", "b", "c", "d"]


async def test_exchanges_record_x_cache_and_counters(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/c")
    await viewer.get("/c")
    records = await viewer.exchanges()
    assert [r["x_cache"] for r in records] == ["Miss from cloudfront", "Hit from cloudfront"]
    assert [r["origin_fetches"] for r in records] == [1, 0]


async def test_ttl_expiry_refetches(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/t"] = OriginResponse(headers={"Cache-Control": "max-age=30"})
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/t")
    clock.advance(29)
    hit = await viewer.get("/t")
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert hit.headers["age"] == "29"
    clock.advance(2)
    again = await viewer.get("/t")
    assert again.headers["x-cache"] == "Miss from cloudfront"
    assert len(origin.requests_for("/t")) == 2


async def test_max_ttl_clamps_a_longer_max_age(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/m"] = OriginResponse(headers={"Cache-Control": "max-age=3600"})
    viewer = await start_edge(distribution(origin.port, min_ttl=0, default_ttl=10, max_ttl=60))
    await viewer.get("/m")
    clock.advance(59)
    assert (await viewer.get("/m")).headers["x-cache"] == "Hit from cloudfront"
    clock.advance(2)
    assert (await viewer.get("/m")).headers["x-cache"] == "Miss from cloudfront"


async def test_min_ttl_raises_a_shorter_max_age(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/n"] = OriginResponse(headers={"Cache-Control": "max-age=5"})
    viewer = await start_edge(distribution(origin.port, min_ttl=100, default_ttl=200))
    await viewer.get("/n")
    clock.advance(99)
    assert (await viewer.get("/n")).headers["x-cache"] == "Hit from cloudfront"
    clock.advance(2)
    assert (await viewer.get("/n")).headers["x-cache"] == "Miss from cloudfront"


async def test_no_store_with_min_ttl_zero_is_not_cached(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/ns"] = OriginResponse(headers={"Cache-Control": "no-store"})
    viewer = await start_edge(distribution(origin.port, min_ttl=0))
    for _ in range(2):
        assert (await viewer.get("/ns")).headers["x-cache"] == "Miss from cloudfront"
    assert len(origin.requests_for("/ns")) == 2


async def test_default_ttl_applies_without_cache_control(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/d"] = OriginResponse(headers={})
    viewer = await start_edge(distribution(origin.port, default_ttl=50, max_ttl=1000))
    await viewer.get("/d")
    clock.advance(49)
    assert (await viewer.get("/d")).headers["x-cache"] == "Hit from cloudfront"
    clock.advance(2)
    assert (await viewer.get("/d")).headers["x-cache"] == "Miss from cloudfront"


async def test_query_string_in_key_only_when_forwarded(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/q?a=1")
    second = await viewer.get("/q?a=2")
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert [r.query_string for r in origin.requests_for("/q")] == [""]  # not forwarded

    forwarding = distribution(
        origin.port,
        forwarded_values={"query_string": True, "cookies": {"forward": "none"}},
    )
    viewer2 = await start_edge(forwarding)
    await viewer2.get("/q2?a=1")
    assert (await viewer2.get("/q2?a=2")).headers["x-cache"] == "Miss from cloudfront"
    assert (await viewer2.get("/q2?a=1")).headers["x-cache"] == "Hit from cloudfront"
    assert [r.query_string for r in origin.requests_for("/q2")] == ["a=1", "a=2"]


async def test_path_patterns_pick_the_behavior(origin: RecordingOrigin, start_edge: StartEdge):
    document = distribution(origin.port)
    generated = {
        "event_type": "viewer-request",
        "handler": handler("flow_generate.py:viewer_request"),
    }
    base = {k: v for k, v in document["distribution"]["default_cache_behavior"].items()}
    document["distribution"]["ordered_cache_behavior"] = [
        {**base, "path_pattern": "/api/*.json", "lambda_function_association": [generated]},
        {**base, "path_pattern": "/api/*", "default_ttl": 0, "max_ttl": 0},
    ]
    viewer = await start_edge(document)
    json_response = await viewer.get("/api/v1/items.json")
    assert json_response.text == "generated at viewer-request"
    other = await viewer.get("/api/v1/items")
    assert other.text == "origin body for /api/v1/items"
    assert [r["behavior"] for r in await viewer.exchanges()] == [0, 1]
    plain = await viewer.get("/index.html")
    assert plain.headers["x-cache"] == "Miss from cloudfront"
    assert (await viewer.exchanges())[-1]["behavior"] == 2


async def test_methods_outside_allowed_methods_get_403(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port, allowed_methods=["GET", "HEAD"]))
    response = await viewer.request("POST", "/form", content=b"x=1")
    assert response.status_code == 403
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert "not configured to allow the HTTP request method" in response.text
    assert origin.seen == []


async def test_head_is_served_from_the_get_entry(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/hd")
    head = await viewer.request("HEAD", "/hd")
    assert head.headers["x-cache"] == "Hit from cloudfront"
    assert head.content == b""
    assert head.headers["content-length"] == str(len("origin body for /hd"))
    assert len(origin.requests_for("/hd")) == 1


async def test_post_is_forwarded_not_cached(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(distribution(origin.port))
    for _ in range(2):
        response = await viewer.request("POST", "/submit", content=b"payload")
        assert response.headers["x-cache"] == "Miss from cloudfront"
    assert [r.method for r in origin.requests_for("/submit")] == ["POST", "POST"]


async def test_default_root_object(origin: RecordingOrigin, start_edge: StartEdge):
    document = distribution(origin.port)
    document["distribution"]["default_root_object"] = "index.html"
    viewer = await start_edge(document)
    assert (await viewer.get("/")).text == "origin body for /index.html"
    assert (await viewer.get("/sub/")).text == "origin body for /sub/"
