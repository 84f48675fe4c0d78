"""The hit path without an await (``Edge.hit``) must answer exactly as the full flow does:
same headers, X-Cache, Age, records, counters and invalidation results."""

from __future__ import annotations

from conftest import FakeClock, OriginResponse, RecordingOrigin, StartEdge, distribution, handler

from edgeproxy.messages import EdgeRequest

PER_REQUEST = {"x-amz-cf-id", "date"}


def comparable(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k.lower(), v) for k, v in headers if k.lower() not in PER_REQUEST]


def request(path: str, *headers: tuple[str, str]) -> EdgeRequest:
    return EdgeRequest("GET", path, "", [("Host", "edge.test"), *headers], "127.0.0.1")


async def test_fast_and_full_hits_answer_alike(
    origin: RecordingOrigin, start_edge: StartEdge, clock: FakeClock
):
    origin.responses["/same"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Content-Type": "text/plain"}, etag='"e1"'
    )
    viewer = await start_edge(distribution(origin.port))
    edge = viewer.running.edge
    miss = await edge.handle(request("/same"))
    assert miss.status == 200
    clock.advance(7)

    fast = edge.hit(request("/same"))
    assert fast is not None
    full = await edge.handle(request("/same", ("If-None-Match", '"other"')))
    assert edge.hit(request("/same", ("If-None-Match", '"other"'))) is None  # full flow only
    assert fast.status == full.status == 200
    assert fast.body == full.body
    assert comparable(fast.headers) == comparable(full.headers)
    assert ("Age", "7") in fast.headers
    assert ("X-Cache", "Hit from cloudfront") in fast.headers

    records = edge.recent
    assert [r.x_cache for r in records][-2:] == ["Hit from cloudfront"] * 2
    assert [r.stages for r in records][-2:] == [[], []]
    assert edge.cache.stats.hits == 2
    assert len(origin.requests_for("/same")) == 1


async def test_fast_hits_over_the_wire_and_after_invalidation(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/wire")
    hit = await viewer.get("/wire")
    head = await viewer.request("HEAD", "/wire")
    assert hit.headers["x-cache"] == head.headers["x-cache"] == "Hit from cloudfront"
    assert head.headers["content-length"] == hit.headers["content-length"]
    assert head.content == b""
    await viewer.client.post(f"{viewer.running.admin_url}/invalidations", json={"paths": ["/*"]})
    assert viewer.running.edge.hit(request("/wire")) is None
    assert (await viewer.get("/wire")).headers["x-cache"] == "Miss from cloudfront"


async def test_behaviors_with_viewer_handlers_take_the_full_flow(
    origin: RecordingOrigin, start_edge: StartEdge
):
    hooks = [{"event_type": "viewer-response", "handler": handler("flow_mark.py:viewer_response")}]
    viewer = await start_edge(distribution(origin.port, lambda_function_association=hooks))
    await viewer.get("/marked")
    assert viewer.running.edge.hit(request("/marked")) is None
    again = await viewer.get("/marked")
    assert again.headers["x-cache"] == "Hit from cloudfront"
    assert again.headers["x-viewer-response"] == "ran"
    assert await viewer.last_stages() == ["viewer-response"]
