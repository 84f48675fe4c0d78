"""The exchange record behind the timeline UI, through a real edge and a real origin: the
list's summary fields, one exchange's detail (the viewer's request, each function's event
in, result out and diff, the cache decision, the origin request and answer, the viewer
response, timings, REPORT), filters, the live stream (Server-Sent Events), kept bodies as
downloads, and the admin listener's refusal of other sites' pages. docs/admin.md.

What a Lambda@Edge event holds is AWS's (Developer Guide, "Lambda@Edge event structure":
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-event-structure.html);
these tests check that the record shows what the edge did, not new CloudFront behaviour."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from conftest import (
    OriginResponse,
    RecordingOrigin,
    StartEdge,
    Viewer,
    WriteConfig,
    distribution,
    handler,
)
from test_cloudfront_functions import with_functions

from edgeproxy.config.loading import load_config
from edgeproxy.exchange import BODY_LIMIT
from edgeproxy.runtime import running_edge

MARK = [{"event_type": "viewer-request", "handler": handler("mark_request.py:viewer_request")}]


async def detail(viewer: Viewer, record: dict[str, Any]) -> dict[str, Any]:
    answer = await viewer.client.get(f"{viewer.running.admin_url}/exchanges/{record['id']}")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_the_detail_shows_what_a_viewer_request_function_changed(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port, lambda_function_association=MARK))
    assert (await viewer.get("/page?a=1", headers={"X-Mine": "1"})).status_code == 200
    assert (await viewer.get("/page?a=1")).headers["x-cache"] == "Hit from cloudfront"
    miss, hit = (await viewer.exchanges())[-2:]
    # the summary: today's fields, plus the behavior's pattern, the query, the duration
    assert miss["stages"] == ["viewer-request"] and miss["behavior"] == 0
    assert miss["path_pattern"] == "*" and miss["query"] == "a=1"
    assert miss["duration_ms"] > 0 and miss["id"] == miss["request_id"]

    found = await detail(viewer, miss)
    assert found["request"]["method"] == "GET" and found["request"]["uri"] == "/page"
    assert ["X-Mine", "1"] in found["request"]["headers"]
    (call,) = found["stage_calls"]
    assert call["stage"] == "viewer-request" and call["kind"] == "lambda@edge"
    assert call["diff"]["headers_added"] == [["x-viewer-request", "/page"]]
    assert call["diff"]["headers_removed"] == call["diff"]["headers_changed"] == []
    cf = call["event"]["Records"][0]["cf"]
    assert cf["request"]["uri"] == "/page" and "x-viewer-request" not in cf["request"]["headers"]
    assert call["result"]["headers"]["x-viewer-request"][0]["value"] == "/page"
    assert call["report"]["duration_ms"] >= 0 and call["report"]["memory_size_mb"] == 128
    assert found["cache"]["result"] == "miss"
    assert found["cache"]["stored"]["ttl_s"] == 60
    assert found["cache"]["ttl_why"]["cache_control"] == "max-age=60"
    (fetch,) = found["origin"]
    assert ["X-Viewer-Request", "/page"] in fetch["request"]["headers"]
    assert fetch["response"]["status"] == 200
    assert found["response"]["status"] == 200
    assert ["X-Cache", "Miss from cloudfront"] in found["response"]["headers"]
    assert [t["step"] for t in found["timings"]][-1] == "total"
    assert origin.requests_for("/page")[0].headers["x-viewer-request"] == "/page"

    again = await detail(viewer, hit)
    assert again["cache"]["result"] == "hit" and again["origin"] == []
    assert again["stage_calls"][0]["diff"]["headers_added"] == [["x-viewer-request", "/page"]]


async def test_a_cloudfront_functions_uri_change_and_log_lines_are_kept(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = with_functions(origin.port, {"viewer-request": "log_and_mark.js"})
    viewer = await start_edge(document)
    assert (await viewer.get("/docs/")).status_code == 200
    found = await detail(viewer, (await viewer.exchanges())[-1])
    (call,) = found["stage_calls"]
    assert call["kind"] == "cloudfront-function" and call["function"] == "log_and_mark"
    assert call["diff"]["headers_added"] == [["x-marked", "yes"]]
    assert call["logs"] == ["marking /docs/"]
    assert "compute_utilization" in call["report"]


async def test_filters_by_path_status_x_cache_and_stage(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/gone"] = OriginResponse(status=404)
    document = distribution(origin.port)
    document["distribution"]["ordered_cache_behavior"] = [
        {**document["distribution"]["default_cache_behavior"], "path_pattern": "/marked/*",
         "lambda_function_association": MARK}
    ]  # fmt: skip
    viewer = await start_edge(document)
    for path in ("/a", "/a", "/gone", "/marked/x"):
        await viewer.get(path)

    async def uris(**query: str) -> list[str]:
        answer = await viewer.client.get(f"{viewer.running.admin_url}/exchanges", params=query)
        assert answer.status_code == 200, answer.text
        return [r["uri"] for r in answer.json()]

    assert await uris(path="/a") == ["/a", "/a"]
    assert await uris(status="404") == await uris(status="4xx") == ["/gone"]
    assert await uris(status="2xx") == ["/a", "/a", "/marked/x"]
    assert await uris(x_cache="hit") == ["/a"]
    assert await uris(stage="viewer-request") == ["/marked/x"]
    assert await uris(stage="none", x_cache="Miss") == ["/a"]
    assert await uris(x_cache="error") == ["/gone"]  # an origin 404: Error from cloudfront
    bad = await viewer.client.get(f"{viewer.running.admin_url}/exchanges?status=4x")
    assert bad.status_code == 400


async def test_the_stream_pushes_each_new_exchange(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(distribution(origin.port))
    url = f"{viewer.running.admin_url}/exchanges/stream?path=/live"
    async with viewer.client.stream("GET", url) as stream:
        assert stream.headers["content-type"] == "text/event-stream"
        lines = stream.aiter_lines()
        assert await anext(lines) == "retry: 1000"
        await viewer.get("/not-this")  # filtered out
        await viewer.get("/live")
        event = await asyncio.wait_for(_next_event(lines), 1.0)
    assert event["uri"] == "/live" and event["x_cache"] == "Miss from cloudfront"


async def _next_event(lines: Any) -> dict[str, Any]:
    name = ""
    async for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name == "exchange":
            found: dict[str, Any] = json.loads(line.removeprefix("data: "))
            return found
    raise AssertionError("the stream ended")


async def test_bodies_are_kept_cut_and_served_as_downloads(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/big"] = OriginResponse(
        headers={"Content-Type": "text/html", "Cache-Control": "max-age=60"},
        body="<script>alert(1)</script>" + "x" * (2 * BODY_LIMIT),
    )
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/big")
    found = await detail(viewer, (await viewer.exchanges())[-1])
    answer = found["response"]
    assert answer["body_truncated"] and answer["body_kept"] == BODY_LIMIT
    assert answer["body_size"] == 2 * BODY_LIMIT + 25
    download = await viewer.client.get(viewer.running.admin_url + answer["body_url"])
    assert download.content.startswith(b"<script>") and len(download.content) == BODY_LIMIT
    # never a page of the admin origin: an origin's HTML must not script the admin API
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.headers["content-security-policy"] == "sandbox"
    assert download.headers["x-edgeproxy-truncated"] == "true"
    assert found["origin"][0]["response"]["body_url"].endswith("/body/origin-0")
    missing = await viewer.client.get(f"{viewer.running.admin_url}/exchanges/nope")
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403),  # <script src>
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}, 403),  # fetch()
        ({"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors"}, 403),
        ({"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}, 200),  # the UI itself
        ({}, 200),  # curl, scripts
    ],
)
async def test_other_sites_pages_cannot_load_the_exchanges(
    headers: dict[str, str], status: int, origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    answer = await viewer.client.get(f"{viewer.running.admin_url}/exchanges", headers=headers)
    assert answer.status_code == status


async def test_the_ui_page_opens_from_a_link_with_a_strict_policy(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    link = {
        "Sec-Fetch-Site": "cross-site",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document",
    }
    page = await viewer.client.get(viewer.running.admin_url + "/", headers=link)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    framed = {**link, "Sec-Fetch-Dest": "iframe"}
    assert (
        await viewer.client.get(viewer.running.admin_url + "/", headers=framed)
    ).status_code == 403
    for name in ("app.js", "style.css"):
        assert (await viewer.client.get(f"{viewer.running.admin_url}/ui/{name}")).status_code == 200
    assert (await viewer.client.get(f"{viewer.running.admin_url}/ui/x.py")).status_code == 404
    rebound = await viewer.client.get(
        viewer.running.admin_url + "/", headers={"Host": "evil.example"}
    )
    assert rebound.status_code == 403


async def test_the_stream_ends_when_the_edge_stops(
    origin: RecordingOrigin, write_config: WriteConfig
):
    config = load_config(write_config(distribution(origin.port))).config
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(timeout=10) as client:
        context = running_edge(config, use_dns=False)
        running = await context.__aenter__()
        async with client.stream("GET", f"{running.admin_url}/exchanges/stream") as stream:
            lines = stream.aiter_lines()
            await anext(lines)
            started = loop.time()
            await context.__aexit__(None, None, None)
            async for _ in lines:
                pass
    assert loop.time() - started < 5  # not aiohttp's 60 s wait for handlers to finish
