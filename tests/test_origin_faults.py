"""Origin faults through a real edge (reference 4.7, 5, 7.11, 7.12).

The origin is a raw asyncio server that misbehaves on purpose (tests/fault_origin.py), the
edge a real one with CloudFront's shortest timeouts (origin_read_timeout 1, connection_timeout
1). Each fault gives CloudFront's status and error page with ``X-Cache: Error from
cloudfront``; nothing is cached, so once the origin is fixed the next viewer gets the fresh
object. Connection attempts are counted by the origin. No test leaves this machine: unknown
hosts are names absent from ``edge.resolve`` (the edge runs without DNS here).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from conftest import StartEdge, Viewer, distribution
from fault_origin import OK_BODY, FaultOrigin, never_accepting_port, refused_port, running


@pytest.fixture
async def faulty() -> AsyncIterator[FaultOrigin]:
    async with running(FaultOrigin()) as origin:
        yield origin


def fast(port: int, *, attempts: int = 1, domain: str = "127.0.0.1", **behavior: Any) -> dict:
    """A distribution in front of ``domain:port`` with the shortest timeouts CloudFront allows."""
    document = distribution(port, **behavior)
    origin = document["distribution"]["origin"][0]
    origin["domain_name"] = domain
    origin["connection_attempts"] = attempts
    origin["connection_timeout"] = 1
    origin["custom_origin_config"]["origin_read_timeout"] = 1
    return document


async def cache_listing(viewer: Viewer) -> list[dict[str, Any]]:
    listing: list[dict[str, Any]] = (
        await viewer.client.get(f"{viewer.running.admin_url}/cache")
    ).json()
    return listing


async def assert_edge_error(viewer: Viewer, path: str, status: int) -> None:
    response = await viewer.get(path)
    assert response.status_code == status
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert f"<H1>{status} ERROR</H1>" in response.text
    assert response.headers["x-amz-cf-id"] in response.text
    assert OK_BODY.decode() not in response.text


async def assert_nothing_cached(viewer: Viewer) -> None:
    assert (await viewer.stats())["cache"]["stores"] == 0
    assert await cache_listing(viewer) == []


async def assert_recovers(viewer: Viewer, origin: FaultOrigin, path: str) -> None:
    """The origin fixed, the next request fetches the fresh object, and the one after hits."""
    origin.mode = "ok"
    fresh = await viewer.get(path)
    assert (fresh.status_code, fresh.content) == (200, OK_BODY)
    assert fresh.headers["x-cache"] == "Miss from cloudfront"
    again = await viewer.get(path)
    assert (again.content, again.headers["x-cache"]) == (OK_BODY, "Hit from cloudfront")
    assert [entry["uri"] for entry in await cache_listing(viewer)] == [path]


FAULTS = [
    pytest.param("close", 502, id="accepts-and-closes"),
    pytest.param("silent", 504, id="never-answers"),
    pytest.param("slow_headers", 504, id="headers-slower-than-read-timeout"),
    pytest.param("reset_mid_body", 502, id="reset-mid-body"),
    pytest.param("bad_status", 502, id="malformed-status-line"),
    pytest.param("not_http", 502, id="not-http"),
    pytest.param("huge_headers", 502, id="headers-over-20480-bytes"),
    pytest.param("huge_field", 502, id="one-header-over-20480-bytes"),
    pytest.param("short_body", 502, id="body-shorter-than-content-length"),
    pytest.param("chunked_cut", 502, id="chunked-body-cut-short"),
]


@pytest.mark.parametrize(("mode", "status"), FAULTS)
async def test_origin_fault_is_cloudfronts_error_never_cached(
    mode: str, status: int, faulty: FaultOrigin, start_edge: StartEdge
):
    faulty.mode = mode
    viewer = await start_edge(fast(faulty.port))
    await assert_edge_error(viewer, "/object", status)
    assert faulty.connections == 1
    await assert_nothing_cached(viewer)
    await assert_recovers(viewer, faulty, "/object")


async def test_headers_within_20480_bytes_are_accepted(faulty: FaultOrigin, start_edge: StartEdge):
    faulty.mode = "big_but_allowed"  # two 9,000-byte headers: over aiohttp's default limit
    viewer = await start_edge(fast(faulty.port))
    response = await viewer.get("/big-head")
    assert (response.status_code, response.content) == (200, OK_BODY)
    assert len(response.headers["x-big-0"]) == 9000


async def test_connection_refused_is_502_then_recovers(start_edge: StartEdge):
    port = refused_port()
    viewer = await start_edge(fast(port, attempts=3))
    await assert_edge_error(viewer, "/down", 502)
    await assert_nothing_cached(viewer)
    async with running(FaultOrigin(), port=port) as origin:
        await assert_recovers(viewer, origin, "/down")


async def test_connection_timeout_is_504(start_edge: StartEdge):
    with never_accepting_port() as port:
        viewer = await start_edge(fast(port))
        await assert_edge_error(viewer, "/unreachable", 504)
    await assert_nothing_cached(viewer)


async def test_unknown_host_is_502_and_nothing_is_sent(faulty: FaultOrigin, start_edge: StartEdge):
    viewer = await start_edge(fast(faulty.port, domain="eu.example.com"))
    await assert_edge_error(viewer, "/nowhere", 502)
    assert faulty.connections == 0
    await assert_nothing_cached(viewer)
    record = (await viewer.exchanges())[-1]
    assert "cannot resolve eu.example.com" in record["error"]


# -- connection attempts (reference 7.12) ---------------------------------------------------


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_connection_attempts_are_honoured(
    attempts: int, faulty: FaultOrigin, start_edge: StartEdge
):
    faulty.mode = "close"
    viewer = await start_edge(fast(faulty.port, attempts=attempts))
    await assert_edge_error(viewer, "/flaky", 502)
    assert faulty.connections == attempts


async def test_a_later_attempt_that_succeeds_is_served(faulty: FaultOrigin, start_edge: StartEdge):
    faulty.plan = ["close", "close"]  # then "ok"
    viewer = await start_edge(fast(faulty.port, attempts=3))
    response = await viewer.get("/third-time")
    assert (response.status_code, response.content) == (200, OK_BODY)
    assert response.headers["x-cache"] == "Miss from cloudfront"
    assert faulty.connections == 3


async def test_get_is_retried_on_read_timeout_up_to_the_attempts(
    faulty: FaultOrigin, start_edge: StartEdge
):
    faulty.mode = "silent"
    viewer = await start_edge(fast(faulty.port, attempts=2))
    await assert_edge_error(viewer, "/slow", 504)
    assert faulty.connections == 2
    assert len(faulty.heads) == 2


async def test_other_methods_are_not_retried_on_read_timeout(
    faulty: FaultOrigin, start_edge: StartEdge
):
    faulty.mode = "silent"
    viewer = await start_edge(fast(faulty.port, attempts=3))
    methods = ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
    answers = await asyncio.gather(
        *(viewer.request(method, f"/slow/{method}", content=b"payload") for method in methods)
    )
    for answer in answers:
        assert answer.status_code == 504
        assert answer.headers["x-cache"] == "Error from cloudfront"
    assert faulty.connections == len(methods)  # one attempt each
    assert sorted(head.split(b" ")[0].decode() for head in faulty.heads) == sorted(methods)


async def test_refused_connections_are_retried_for_any_method(start_edge: StartEdge):
    # Nothing reached the origin, so even a POST is tried again; all attempts refused → 502.
    viewer = await start_edge(fast(refused_port(), attempts=3))
    response = await viewer.request("POST", "/form", content=b"a=1")
    assert response.status_code == 502


# -- edge.resolve with a port (a local server stands in for a real host) --------------------


async def test_resolve_with_port_fetches_the_name_there_over_http(
    faulty: FaultOrigin, start_edge: StartEdge
):
    document = fast(443, domain="eu.example.com")
    custom = document["distribution"]["origin"][0]["custom_origin_config"]
    custom["origin_protocol_policy"] = "https-only"
    document["edge"]["resolve"] = {"eu.example.com": f"127.0.0.1:{faulty.port}"}
    viewer = await start_edge(document)
    response = await viewer.get("/stand-in")
    assert (response.status_code, response.content) == (200, OK_BODY)
    assert b"\r\nHost: eu.example.com\r\n" in faulty.heads[0]
    assert faulty.heads[0].startswith(b"GET /stand-in HTTP/1.1\r\n")


ORIGIN_REQUEST_TO_BUCKET = """
def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    request["origin"] = {"s3": {"domainName": "my-bucket.s3.eu-west-1.amazonaws.com",
                                "region": "eu-west-1", "authMethod": "none", "path": "/site",
                                "customHeaders": {}}}
    request["headers"]["host"] = [{"key": "Host",
                                   "value": "my-bucket.s3.eu-west-1.amazonaws.com"}]
    return request
"""


async def test_resolve_with_port_applies_to_an_origin_a_handler_picks(
    faulty: FaultOrigin, start_edge: StartEdge, tmp_path: Path
):
    (tmp_path / "to_bucket.py").write_text(ORIGIN_REQUEST_TO_BUCKET)
    association = {"event_type": "origin-request", "handler": f"{tmp_path}/to_bucket.py:handler"}
    document = fast(refused_port(), lambda_function_association=[association])
    bucket = "my-bucket.s3.eu-west-1.amazonaws.com"
    document["edge"]["resolve"] = {bucket: f"127.0.0.1:{faulty.port}"}
    viewer = await start_edge(document)
    response = await viewer.get("/index.html")
    assert (response.status_code, response.content) == (200, OK_BODY)
    assert faulty.heads[0].startswith(b"GET /site/index.html HTTP/1.1\r\n")
    assert f"\r\nHost: {bucket}\r\n".encode() in faulty.heads[0]


async def test_a_name_a_handler_picks_outside_edge_resolve_is_502(
    faulty: FaultOrigin, start_edge: StartEdge, tmp_path: Path
):
    (tmp_path / "to_bucket.py").write_text(ORIGIN_REQUEST_TO_BUCKET)
    association = {"event_type": "origin-request", "handler": f"{tmp_path}/to_bucket.py:handler"}
    viewer = await start_edge(fast(faulty.port, lambda_function_association=[association]))
    await assert_edge_error(viewer, "/index.html", 502)
    assert faulty.connections == 0


# -- hop-by-hop headers and framing, both ways ----------------------------------------------


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_hop_by_hop_headers_are_dropped_both_ways(faulty: FaultOrigin, start_edge: StartEdge):
    faulty.mode = "hop_by_hop"
    all_headers = {"query_string": False, "headers": ["*"], "cookies": {"forward": "none"}}
    viewer = await start_edge(fast(faulty.port, forwarded_values=all_headers))
    response = await viewer.request(
        "POST",
        "/hop",
        content=chunks(b"chunk one, ", b"chunk two"),  # chunked from the viewer
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "for the edge only",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade": "h2c",
            "Proxy-Authorization": "Basic eDp5",
            "Expect": "100-continue",
            "X-Kept": "1",
        },
    )
    assert (response.status_code, response.content) == (200, b"ok")
    assert response.headers["x-end"] == "kept"
    for gone in ("x-hop", "keep-alive", "proxy-authenticate", "upgrade"):
        assert gone not in response.headers
    head = faulty.heads[0].decode("latin-1").lower()
    for gone in (
        "x-private:",
        "\r\nkeep-alive:",
        "\r\nte:",
        "upgrade:",
        "proxy-authorization:",
        "expect:",
        "content-length:",
    ):
        assert gone not in head, gone
    assert "\r\nx-kept: 1\r\n" in head
    assert head.count("\r\nconnection:") == 1  # the edge's own [DG: "Connection: Keep-Alive"]
    assert "\r\nconnection: keep-alive\r\n" in head
    # Streamed on as it came: chunked (CloudFront forwards Transfer-Encoding), re-framed by us.
    assert head.count("transfer-encoding") == 1
    assert "\r\ntransfer-encoding: chunked\r\n" in head
    assert faulty.bodies[0] == b"chunk one, chunk two"
