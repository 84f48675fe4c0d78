"""The origin client on its own, against real local origins: whole bodies and streams,
framing and hop-by-hop headers toward the origin, edge.resolve with ports, error mapping,
and a stale keep-alive connection retried once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from fault_origin import OK_BODY, STREAM_SIZE, FaultOrigin, refused_port, running

from edgeproxy.errors import (
    OriginConnectError,
    OriginDnsError,
    OriginResponseError,
    OriginTimeout,
)
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, OriginTarget, header_value
from edgeproxy.origin.client import OriginClient
from edgeproxy.origin.headers import with_length
from edgeproxy.origin.stream import OriginStream

BLOCK = bytes(range(256)) * 256  # 64 KiB


@dataclass
class Origin:
    """A real aiohttp origin: /length/<n> answers n bytes with a Content-Length,
    /chunked/<n> answers n bytes chunked, /slow-blocks/<n> n blocks with pauses; every
    request's peer port is recorded (to tell a reused connection from a new one)."""

    port: int = 0
    peers: list[int] = field(default_factory=list)

    async def length(self, request: web.Request) -> web.StreamResponse:
        self.peers.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        size = int(request.match_info["n"])
        response = web.StreamResponse(headers={"Cache-Control": "max-age=60"})
        response.content_length = size
        await response.prepare(request)
        if request.method != "HEAD":
            await _write_blocks(response, size)
        return response

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        self.peers.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await _write_blocks(response, int(request.match_info["n"]))
        await response.write_eof()
        return response


async def _write_blocks(response: web.StreamResponse, size: int) -> None:
    sent = 0
    while sent < size:
        part = BLOCK[: min(len(BLOCK), size - sent)]
        await response.write(part)
        sent += len(part)


def expected(size: int) -> bytes:
    return (BLOCK * (size // len(BLOCK) + 1))[:size]


@pytest.fixture
async def real_origin() -> AsyncIterator[Origin]:
    origin = Origin()
    app = web.Application()
    app.router.add_route("*", "/length/{n}", origin.length)
    app.router.add_get("/chunked/{n}", origin.chunked)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin.port = runner.addresses[0][1]
    yield origin
    await runner.cleanup()


@pytest.fixture
async def faulty() -> AsyncIterator[FaultOrigin]:
    async with running(FaultOrigin()) as origin:
        yield origin


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[..., OriginClient]]:
    clients: list[OriginClient] = []

    def make(
        resolve: dict[str, str] | None = None, max_body: int = STREAM_SIZE // 2
    ) -> OriginClient:
        client = OriginClient(resolve or {}, use_dns=False, max_body=max_body)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def aimed(
    port: int,
    path: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    domain: str = "127.0.0.1",
    protocol: str = "http",
    attempts: int = 1,
    read_timeout: float = 5.0,
) -> EdgeRequest:
    target = OriginTarget(
        domain,
        port,
        protocol,
        read_timeout=read_timeout,
        connection_timeout=1.0,
        connection_attempts=attempts,
    )
    return EdgeRequest(method, path, "", [], "203.0.113.9", body=body, origin=target)


def host(request: EdgeRequest) -> Headers:
    assert request.origin is not None
    return [("Host", request.origin.domain_name)]


async def drain(response: EdgeResponse) -> list[bytes]:
    assert response.stream is not None
    return [chunk async for chunk in response.stream]


# -- whole bodies and streams -----------------------------------------------------------------


async def test_body_within_the_limit_is_read_whole(real_origin: Origin, client_factory):
    client = client_factory()
    request = aimed(real_origin.port, "/length/1000")
    response = await client.fetch(request, host(request))
    assert (response.status, response.stream, response.body) == (200, None, expected(1000))
    assert header_value(response.headers, "content-length") == "1000"


async def test_chunked_body_within_the_limit_is_read_whole_without_a_length(
    real_origin: Origin, client_factory
):
    client = client_factory()
    request = aimed(real_origin.port, "/chunked/300000")
    response = await client.fetch(request, host(request))
    assert response.stream is None
    assert response.body == expected(300000)
    assert header_value(response.headers, "content-length") is None
    # kept for the origin-response event (read-only there) and the viewer's framing
    assert header_value(response.headers, "transfer-encoding") == "chunked"


async def test_body_over_the_limit_by_its_length_is_streamed_in_chunks(
    real_origin: Origin, client_factory
):
    client = client_factory()
    size = 4 * STREAM_SIZE
    request = aimed(real_origin.port, f"/length/{size}")
    response = await client.fetch(request, host(request))
    assert isinstance(response.stream, OriginStream)
    assert response.body == b""
    assert header_value(response.headers, "content-length") == str(size)  # as declared
    chunks = await drain(response)
    assert len(chunks) > 1
    assert max(map(len, chunks)) < size
    assert b"".join(chunks) == expected(size)
    again = await client.fetch(request, host(request))  # the connection went back to the pool
    await drain(again)
    assert real_origin.peers[0] == real_origin.peers[1]


async def test_chunked_body_growing_past_the_limit_becomes_a_stream(
    real_origin: Origin, client_factory
):
    client = client_factory(max_body=100_000)
    request = aimed(real_origin.port, "/chunked/1000000")
    response = await client.fetch(request, host(request))
    assert response.stream is not None
    assert header_value(response.headers, "content-length") is None
    assert b"".join(await drain(response)) == expected(1_000_000)


async def test_closing_a_stream_early_drops_its_connection(real_origin: Origin, client_factory):
    client = client_factory()
    request = aimed(real_origin.port, f"/length/{8 * STREAM_SIZE}")
    response = await client.fetch(request, host(request))
    assert isinstance(response.stream, OriginStream)
    await anext(response.stream)
    await response.stream.aclose()
    assert [chunk async for chunk in response.stream] == []
    small = aimed(real_origin.port, "/length/10")
    assert (await client.fetch(small, host(small))).body == expected(10)
    assert real_origin.peers[0] != real_origin.peers[1]  # a new connection


@pytest.mark.parametrize("mode", ["short_stream", "short_chunked_stream"])
async def test_a_stream_ending_short_raises_never_ends_quietly(
    mode: str, faulty: FaultOrigin, client_factory
):
    faulty.mode = mode
    client = client_factory(max_body=STREAM_SIZE // 8)
    request = aimed(faulty.port, "/short")
    response = await client.fetch(request, host(request))
    assert response.stream is not None
    received = []
    with pytest.raises(OriginResponseError, match="truncated body"):
        async for chunk in response.stream:
            received.append(chunk)
    assert sum(map(len, received)) < STREAM_SIZE + 256


async def test_a_stream_stalling_past_the_read_timeout_raises(faulty: FaultOrigin, client_factory):
    faulty.mode = "stall_mid_body"
    client = client_factory(max_body=STREAM_SIZE // 8)
    request = aimed(faulty.port, "/stall", read_timeout=1.0)
    response = await client.fetch(request, host(request))
    assert response.stream is not None
    with pytest.raises(OriginTimeout):
        await drain(response)


async def test_head_keeps_the_declared_length_and_is_never_a_stream(
    real_origin: Origin, client_factory
):
    client = client_factory(max_body=1000)
    request = aimed(real_origin.port, f"/length/{STREAM_SIZE}", method="HEAD")
    response = await client.fetch(request, host(request))
    assert (response.stream, response.body) == (None, b"")
    assert header_value(response.headers, "content-length") == str(STREAM_SIZE)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_a_stream_is_never_held_whole_in_memory(real_origin: Origin, client_factory):
    """128 MiB through the client with a 1 MiB limit: memory grows by far less than the
    body (bench/soak_stream.py measures 1 GB the same way; docs/reliability.md)."""
    client = client_factory(max_body=STREAM_SIZE)
    size = 128 * STREAM_SIZE
    request = aimed(real_origin.port, f"/length/{size}")
    before = rss_bytes()
    response = await client.fetch(request, host(request))
    assert response.stream is not None
    received, peak = 0, before
    async for chunk in response.stream:
        received += len(chunk)
        peak = max(peak, rss_bytes())
    assert received == size
    assert peak - before < size // 4


# -- requests toward the origin -----------------------------------------------------------------


async def test_request_body_goes_with_a_content_length_and_no_hop_by_hop_headers(
    faulty: FaultOrigin, client_factory
):
    client = client_factory()
    request = aimed(faulty.port, "/form", method="POST", body=b"a=1&b=2")
    headers = [
        ("Host", "www.example.com"),
        ("Connection", "keep-alive, X-Private, Host, Via"),
        ("X-Private", "edge only"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "999"),
        ("Expect", "100-continue"),
        ("TE", "trailers"),
        ("Upgrade", "websocket"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Authorization", "Basic eDp5"),
        ("Via", "1.1 abc.cloudfront.net (CloudFront)"),
        ("X-Kept", "yes"),
    ]
    response = await client.fetch(request, headers)
    assert response.body == OK_BODY
    head = faulty.heads[0].decode("latin-1")
    lines = head.split("\r\n")
    assert lines[0] == "POST /form HTTP/1.1"
    names = [line.split(":")[0].lower() for line in lines[1:] if line]
    assert sorted(names) == ["connection", "content-length", "host", "via", "x-kept"]
    assert "Connection: Keep-Alive" in lines  # the edge's own, as CloudFront sends it
    assert "Content-Length: 7" in lines
    assert "Host: www.example.com" in lines
    assert faulty.bodies == [b"a=1&b=2"]


async def test_response_hop_by_hop_headers_are_dropped(faulty: FaultOrigin, client_factory):
    faulty.mode = "hop_by_hop"
    client = client_factory()
    request = aimed(faulty.port, "/hop")
    response = await client.fetch(request, host(request))
    assert [name for name, _ in response.headers] == ["X-End", "Content-Length"]


def test_content_length_is_the_bytes_received_and_never_added():
    headers = [("A", "1"), ("Content-Length", "10"), ("content-length", "10"), ("B", "2")]
    assert with_length(headers, 7) == [("A", "1"), ("Content-Length", "7"), ("B", "2")]
    assert with_length([("A", "1")], 7) == [("A", "1")]


# -- edge.resolve and unknown hosts -------------------------------------------------------------


async def test_resolve_with_a_port_fetches_there_over_plain_http(
    faulty: FaultOrigin, client_factory
):
    client = client_factory({"EU.example.com": f"127.0.0.1:{faulty.port}"})
    request = aimed(443, "/x", domain="eu.example.com", protocol="https")
    response = await client.fetch(request, host(request))
    assert response.body == OK_BODY
    assert b"\r\nHost: eu.example.com\r\n" in faulty.heads[0]


async def test_resolve_without_a_port_keeps_the_origins_port(faulty: FaultOrigin, client_factory):
    client = client_factory({"eu.example.com": "127.0.0.1"})
    request = aimed(faulty.port, "/x", domain="eu.example.com")
    assert (await client.fetch(request, host(request))).body == OK_BODY


async def test_a_name_outside_edge_resolve_is_a_dns_error_tried_once(client_factory):
    client = client_factory({"other.example.com": "127.0.0.1"})
    request = aimed(80, "/x", domain="eu.example.com", attempts=3)
    with pytest.raises(OriginDnsError, match="cannot resolve eu.example.com"):
        await client.fetch(request, host(request))


async def test_refused_connection_is_a_connect_error(client_factory):
    client = client_factory()
    request = aimed(refused_port(), "/x", attempts=2)
    with pytest.raises(OriginConnectError) as info:
        await client.fetch(request, host(request))
    assert type(info.value) is OriginConnectError


# -- a kept-alive connection the origin closed --------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_a_stale_pooled_connection_is_retried_once_for_idempotent_methods(
    method: str, faulty: FaultOrigin, client_factory
):
    faulty.mode = "answer_once_then_drop"
    client = client_factory()
    first = aimed(faulty.port, "/one", method=method)  # one attempt only
    assert (await client.fetch(first, host(first))).body == OK_BODY
    second = aimed(faulty.port, "/two", method=method)
    assert (await client.fetch(second, host(second))).body == OK_BODY
    assert faulty.connections == 2


async def test_a_stale_pooled_connection_is_not_retried_for_post(
    faulty: FaultOrigin, client_factory
):
    faulty.mode = "answer_once_then_drop"
    client = client_factory()
    first = aimed(faulty.port, "/one", method="POST", body=b"1")
    assert (await client.fetch(first, host(first))).body == OK_BODY
    second = aimed(faulty.port, "/two", method="POST", body=b"2")
    with pytest.raises(OriginResponseError, match="without an answer"):
        await client.fetch(second, host(second))
    assert faulty.connections == 1
