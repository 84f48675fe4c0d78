"""The hit path without an await (``Edge.hit``) must answer exactly as the full flow does:
same headers, X-Cache, Age, records, counters and invalidation results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
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


# -- every behavior shape through both paths ------------------------------------------------

BERLIN = {"cidr": "127.0.0.2/32", "country": "DE", "region": "BE", "city": "Berlin"}
SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"  # managed SecurityHeadersPolicy


def _geo(document: dict[str, Any]) -> None:
    document["distribution"]["restrictions"] = {
        "geo_restriction": {"restriction_type": "blacklist", "locations": ["DE"]}
    }
    document["edge"]["geo"] = {"ranges": [BERLIN], "default": {"country": "US"}}


def _hook(stage: str, spec: str) -> Callable[[dict[str, Any]], None]:
    def shape(document: dict[str, Any]) -> None:
        hooks = [{"event_type": stage, "handler": handler(spec)}]
        document["distribution"]["default_cache_behavior"]["lambda_function_association"] = hooks

    return shape


def _behavior(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def shape(document: dict[str, Any]) -> None:
        document["distribution"]["default_cache_behavior"].update(fields)

    return shape


def _error_page(document: dict[str, Any]) -> None:
    document["distribution"]["custom_error_response"] = [
        {"error_code": 404, "response_code": 404, "response_page_path": "/oops.html"}
    ]


def _vary(document: dict[str, Any]) -> None:
    forwarded = document["distribution"]["default_cache_behavior"]["forwarded_values"]
    forwarded["headers"] = ["Accept-Language"]


SHAPES: dict[str, Callable[[dict[str, Any]], None]] = {
    "plain": lambda document: None,
    "geo-restriction": _geo,
    "redirect-to-https": _behavior(viewer_protocol_policy="redirect-to-https"),
    "https-only": _behavior(viewer_protocol_policy="https-only"),
    "viewer-request": _hook("viewer-request", "mark_request.py:viewer_request"),
    "origin-request": _hook("origin-request", "flow_passthrough.py:handler"),
    "origin-response": _hook("origin-response", "flow_mark.py:origin_response"),
    "viewer-response": _hook("viewer-response", "flow_mark.py:viewer_response"),
    "response-headers-policy": _behavior(response_headers_policy_id=SECURITY_HEADERS),
    "custom-error-page": _error_page,
    "vary": _vary,
}

# (client address, extra headers, path): viewers the shapes treat differently
VIEWERS = [
    ("127.0.0.1", (), "/page"),
    ("127.0.0.2", (), "/page"),  # located in DE by the geo shape's range
    ("127.0.0.1", (("Accept-Language", "de"),), "/varied"),  # the origin varies on it
    ("127.0.0.1", (), "/varied"),
    ("127.0.0.1", (), "/missing"),  # the origin answers 404
]


@pytest.mark.parametrize("shape", SHAPES)
async def test_every_behavior_shape_answers_alike_on_both_paths(
    shape: str, origin: RecordingOrigin, start_edge: StartEdge
):
    """Whenever the quick hit path answers, it answers exactly as the full flow does in the
    same state, for every shape a behavior can take; and it does answer plain hits."""
    origin.responses["/varied"] = OriginResponse(
        headers={"Cache-Control": "max-age=600", "Vary": "Accept-Language"}
    )
    origin.responses["/missing"] = OriginResponse(
        status=404, headers={"Cache-Control": "max-age=600"}
    )
    document = distribution(origin.port)
    SHAPES[shape](document)
    viewer = await start_edge(document)
    edge = viewer.running.edge
    for client, headers, path in VIEWERS:  # fill the cache from the permitted viewer
        await edge.handle(_from(client, path, headers))
    quick_answers = 0
    for client, headers, path in VIEWERS:
        quick = edge.hit(_from(client, path, headers))  # changes nothing the full flow reads
        full = await edge.handle(_from(client, path, headers))
        if quick is None:
            continue
        quick_answers += 1
        where = f"{shape}: {client} {dict(headers)} {path}"
        assert (quick.status, quick.body) == (full.status, full.body), where
        assert comparable(quick.headers) == comparable(full.headers), where
    if shape == "plain":
        assert quick_answers == 5  # every viewer: a Vary'd object is an object like any other


def _from(client: str, path: str, headers: tuple[tuple[str, str], ...]) -> EdgeRequest:
    return EdgeRequest("GET", path, "", [("Host", "edge.test"), *headers], client)


async def test_a_blocked_country_is_refused_on_a_cached_object_over_the_wire(
    origin: RecordingOrigin, start_edge: StartEdge
):
    """Geo restriction on the quick hit path (it answered 200 Hit to a blocked viewer)."""
    document = distribution(origin.port)
    _geo(document)
    viewer = await start_edge(document)
    assert (await viewer.get("/page")).status_code == 200  # 127.0.0.1: US, stored
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(transport=transport) as berlin:
        blocked = await berlin.get(viewer.running.url("/page"))
    assert blocked.status_code == 403
    assert blocked.headers["x-cache"] == "Error from cloudfront"
    assert len(origin.requests_for("/page")) == 1
