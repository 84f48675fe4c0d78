"""The viewer protocol speaks HTTP/1.1 correctly: keep-alive, Connection: close, HTTP/1.0,
pipelining in order, HEAD, request bodies (length and chunked), 100-continue, Date and
Server, and streamed answers (with a length, chunked, failing mid-way). A real origin and
the real edge behind a ``ViewerServer``; raw sockets read the bytes on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvloop
import yaml
from aiohttp import web
from conftest import RecordingOrigin, StartEdge, distribution, handler
from viewer_wire import RawViewer, SpyEdge, serving

from edgeproxy.config.loading import load_config
from edgeproxy.errors import OriginResponseError
from edgeproxy.messages import EdgeRequest, EdgeResponse
from edgeproxy.pipeline import Edge
from edgeproxy.runtime import running_edge
from edgeproxy.server.head import DateHeader, Framing, encode_head


@dataclass
class Served:
    spy: SpyEdge
    port: int
    origin: RecordingOrigin

    async def viewer(self) -> RawViewer:
        return await RawViewer.connect(self.port)


@pytest.fixture
async def served(origin: RecordingOrigin, start_edge: StartEdge) -> AsyncIterator[Served]:
    viewer = await start_edge(distribution(origin.port))
    spy = SpyEdge(viewer.running.edge)
    async with serving(spy) as (_, port):
        yield Served(spy, port, origin)


async def test_keep_alive_is_the_default(served: Served):
    viewer = await served.viewer()
    for expected in ("Miss from cloudfront", "Hit from cloudfront"):
        await viewer.request("GET", "/page")
        response = await viewer.response()
        assert response.status == 200
        assert response.body == b"origin body for /page"
        assert response.header("x-cache") == expected
        assert response.header("connection") == "keep-alive"  # as CloudFront writes it
    first, second = served.spy.requests
    assert first.client_port == second.client_port  # one connection
    assert (first.http_version, first.scheme, first.client_ip) == ("1.1", "http", "127.0.0.1")
    await viewer.close()


async def test_connection_close_is_honoured(served: Served):
    viewer = await served.viewer()
    await viewer.request("GET", "/page", "Connection: close")
    response = await viewer.response()
    assert response.status == 200
    assert response.header("connection") == "close"
    assert await viewer.closed_by_server()


async def test_http10_closes_unless_keep_alive_is_asked(served: Served):
    viewer = await served.viewer()
    await viewer.send(b"GET /old HTTP/1.0\r\n\r\n")
    response = await viewer.response()
    assert response.status == 200
    assert response.header("connection") == "close"
    assert await viewer.closed_by_server()

    viewer = await served.viewer()
    for _ in range(2):
        await viewer.send(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = await viewer.response()
        assert response.status == 200
        assert response.header("connection") == "keep-alive"
    assert [r.http_version for r in served.spy.requests] == ["1.0"] * 3
    await viewer.close()


async def test_pipelined_requests_are_answered_in_order(served: Served):
    viewer = await served.viewer()
    await viewer.request("GET", "/warm")  # cached: answered without waiting for the origin
    await viewer.response()
    pipelined = b"".join(
        f"{method} {path} HTTP/1.1\r\nHost: edge.test\r\n\r\n".encode()
        for method, path in [("GET", "/miss-1"), ("GET", "/warm"), ("HEAD", "/warm"),
                             ("GET", "/miss-2")]
    )
    await viewer.send(pipelined)
    miss_1 = await viewer.response()
    warm = await viewer.response()
    head = await viewer.response(head_only=True)
    miss_2 = await viewer.response()
    assert miss_1.body == b"origin body for /miss-1"
    assert miss_1.header("x-cache") == "Miss from cloudfront"
    assert warm.body == b"origin body for /warm"
    assert warm.header("x-cache") == "Hit from cloudfront"
    assert head.header("content-length") == str(len(b"origin body for /warm"))
    assert miss_2.body == b"origin body for /miss-2"
    assert [r.uri for r in served.spy.requests] == ["/warm", "/miss-1", "/warm", "/warm", "/miss-2"]
    await viewer.close()


async def test_head_gets_the_headers_of_get_and_no_body(served: Served):
    viewer = await served.viewer()
    await viewer.request("GET", "/doc")
    get = await viewer.response()
    await viewer.request("HEAD", "/doc")
    head = await viewer.response(head_only=True)
    assert head.status == 200
    assert head.header("content-length") == str(len(get.body))
    assert head.header("x-cache") == "Hit from cloudfront"
    # Had any body bytes followed the HEAD answer, this response would not parse.
    await viewer.request("GET", "/next")
    assert (await viewer.response()).body == b"origin body for /next"
    await viewer.close()


async def test_request_body_with_content_length_is_read_fully(served: Served):
    viewer = await served.viewer()
    await viewer.request("POST", "/form", body=b"a=1&b=2")
    assert (await viewer.response()).status == 200
    assert served.spy.requests[-1].body_size == 7  # streamed through, never held
    (seen,) = served.origin.requests_for("/form")
    assert await seen.read() == b"a=1&b=2"
    await viewer.close()


async def test_chunked_request_body_is_read_fully(served: Served):
    viewer = await served.viewer()
    await viewer.send(
        b"POST /upload HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n"
    )
    await asyncio.sleep(0.05)  # the rest comes in a later packet
    await viewer.send(b"6;ext=1\r\n world\r\n0\r\n\r\n")
    assert (await viewer.response()).status == 200
    assert served.spy.requests[-1].body_size == 11
    (seen,) = served.origin.requests_for("/upload")
    assert await seen.read() == b"hello world"
    # The connection goes on with the next request: the chunked body was consumed whole.
    await viewer.request("GET", "/after")
    assert (await viewer.response()).body == b"origin body for /after"
    await viewer.close()


async def test_expect_100_continue_is_answered_before_the_body(served: Served):
    viewer = await served.viewer()
    await viewer.send(
        b"PUT /thing HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 4\r\n"
        b"Expect: 100-continue\r\n\r\n"
    )
    interim = await asyncio.wait_for(viewer.reader.readuntil(b"\r\n\r\n"), 5)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    await viewer.send(b"data")
    response = await viewer.response()
    assert response.status == 200
    (seen,) = served.origin.requests_for("/thing")
    assert await seen.read() == b"data"
    await viewer.close()


async def test_date_on_every_answer_and_server_cloudfront_on_edge_made_ones(
    origin: RecordingOrigin, start_edge: StartEdge
):
    generate = handler("flow_generate.py:viewer_request")
    hooks = [{"event_type": "viewer-request", "handler": generate}]
    document = distribution(origin.port)
    document["distribution"]["ordered_cache_behavior"] = [
        {**document["distribution"]["default_cache_behavior"], "path_pattern": "/gen/*",
         "lambda_function_association": hooks}
    ]
    running = await start_edge(document)
    async with serving(running.running.edge) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/gen/x")
        generated = await viewer.response()
        await viewer.request("GET", "/from-origin")
        from_origin = await viewer.response()
        await viewer.close()
    assert generated.headers_named("server") == ["CloudFront"]
    assert len(generated.headers_named("date")) == 1
    assert generated.body == b"generated at viewer-request"
    assert len(from_origin.headers_named("date")) == 1
    assert from_origin.headers_named("server")[0].startswith("Python/")  # the origin's own


# -- streamed answers ------------------------------------------------------------------------


@dataclass
class Chunks:
    """A response stream, as the origin client will hand one over: it records ``aclose``."""

    pieces: list[bytes]
    fail_after: int | None = None
    delay: float = 0.0
    closed: int = 0

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self.fail_after is not None and self.fail_after == 0:
            raise OriginResponseError("origin reset in the middle of the body")
        if not self.pieces:
            raise StopAsyncIteration
        if self.fail_after is not None:
            self.fail_after -= 1
        await asyncio.sleep(self.delay)
        return self.pieces.pop(0)

    async def aclose(self) -> None:
        self.closed += 1


@dataclass
class StreamingEdge:
    """The real edge, with each answer's body handed over as a stream of 5-byte pieces."""

    edge: Edge
    declare_length: bool = False
    fail_after: int | None = None
    delay: float = 0.0
    streams: list[Chunks] = field(default_factory=list)

    @property
    def identity(self) -> Any:
        return self.edge.identity

    async def handle(self, request: EdgeRequest) -> EdgeResponse:
        response = await self.edge.handle(request)
        body = response.body
        stream = Chunks([body[i : i + 5] for i in range(0, len(body), 5)], self.fail_after,
                        self.delay)
        self.streams.append(stream)
        headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
        if self.declare_length:
            headers.append(("Content-Length", str(len(body))))
        return EdgeResponse(response.status, headers, b"", response.reason, stream=stream)


@pytest.fixture
async def real_edge(origin: RecordingOrigin, start_edge: StartEdge) -> Edge:
    edge: Edge = (await start_edge(distribution(origin.port))).running.edge
    return edge


async def test_stream_with_a_length_is_sent_as_it_comes(real_edge: Edge):
    streaming = StreamingEdge(real_edge, declare_length=True)
    async with serving(streaming) as (_, port):
        viewer = await RawViewer.connect(port)
        for _ in range(2):  # and the connection carries the next request
            await viewer.request("GET", "/big")
            response = await viewer.response()
            assert response.body == b"origin body for /big"
            assert response.header("content-length") == str(len(response.body))
            assert not response.chunked
        await viewer.close()
    assert [s.closed for s in streaming.streams] == [1, 1]


async def test_stream_without_a_length_is_chunked(real_edge: Edge):
    streaming = StreamingEdge(real_edge)
    async with serving(streaming) as (_, port):
        viewer = await RawViewer.connect(port)
        for _ in range(2):
            await viewer.request("GET", "/big")
            response = await viewer.response()
            assert response.chunked
            assert response.header("content-length") is None
            assert response.body == b"origin body for /big"
        await viewer.close()
    assert [s.closed for s in streaming.streams] == [1, 1]


async def test_stream_to_http10_without_a_length_ends_with_the_connection(real_edge: Edge):
    streaming = StreamingEdge(real_edge)
    async with serving(streaming) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.send(b"GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = await viewer.response()
        assert response.header("connection") == "close"
        assert response.body == b"origin body for /big"
        await viewer.close()


async def test_stream_failing_midway_closes_without_the_last_chunk(real_edge: Edge):
    streaming = StreamingEdge(real_edge, fail_after=2)
    async with serving(streaming) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/big")
        raw = await viewer.rest()  # up to the server's close
        await viewer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"5\r\norigi\r\n5\r\nn bod\r\n"  # two chunks, never "0\r\n\r\n"
    assert streaming.streams[0].closed == 1


async def test_stream_failing_midway_with_a_length_stops_short(real_edge: Edge):
    streaming = StreamingEdge(real_edge, declare_length=True, fail_after=1)
    async with serving(streaming) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/big")
        raw = await viewer.rest()
        await viewer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Content-Length: 20" in head
    assert body == b"origi"
    assert streaming.streams[0].closed == 1


async def test_head_with_a_stream_sends_no_body_and_closes_the_stream(real_edge: Edge):
    streaming = StreamingEdge(real_edge, declare_length=True)
    async with serving(streaming) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/big")
        get = await viewer.response()
        await viewer.request("HEAD", "/big")
        head = await viewer.response(head_only=True)
        await viewer.request("GET", "/big")  # nothing of the HEAD's stream came in between
        assert (await viewer.response()).body == get.body
        await viewer.close()
    assert head.header("content-length") == str(len(get.body))
    assert [s.closed for s in streaming.streams] == [1, 1, 1]


# -- response heads ----------------------------------------------------------------------------


def _head(response: EdgeResponse, **kwargs: Any) -> tuple[bytes, Framing, bool]:
    options = {"head_only": False, "keep_alive": True, "http10": False, **kwargs}
    head = encode_head(response, DateHeader(), **options)
    return head.data, head.framing, head.keep_alive


def test_framing_headers_are_the_servers_own():
    response = EdgeResponse(
        200, [("Transfer-Encoding", "chunked"), ("Content-Length", "999"), ("Connection", "x"),
              ("X-A", "1")], b"abc"
    )
    data, framing, _ = _head(response)
    assert framing is Framing.LENGTH
    assert data.startswith(b"HTTP/1.1 200 OK\r\nX-A: 1\r\nDate: ")
    assert data.endswith(
        b"\r\nServer: CloudFront\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n"
    )
    assert b"chunked" not in data and b"999" not in data and b"Connection: x" not in data


@pytest.mark.parametrize("status", [204, 304, 101])
def test_bodyless_statuses_get_no_length_and_no_body(status: int):
    data, framing, _ = _head(EdgeResponse(status, [("X-A", "1")], b"ignored"))
    assert framing is Framing.NONE
    assert b"Content-Length" not in data


def test_head_of_an_origin_head_keeps_the_length_it_declared():
    response = EdgeResponse(200, [("Content-Length", "1234")], b"")
    data, framing, _ = _head(response, head_only=True)
    assert framing is Framing.NONE
    assert b"Content-Length: 1234\r\n" in data


def test_origin_date_server_and_reason_are_kept():
    response = EdgeResponse(
        599, [("Date", "Mon, 01 Jan 2024 00:00:00 GMT"), ("Server", "AmazonS3")], b"", "Odd"
    )
    data, _, _ = _head(response, keep_alive=False)
    assert data.startswith(b"HTTP/1.1 599 Odd\r\n")
    assert data.count(b"Date:") == 1 and data.count(b"Server:") == 1
    assert b"Server: AmazonS3\r\n" in data
    assert b"Connection: close\r\n" in data


def test_header_values_beyond_latin1_are_sent_as_utf8():
    data, _, _ = _head(EdgeResponse(200, [("X-Name", "Zoë ☃")], b""))
    assert "X-Name: Zoë ☃\r\n".encode() in data


# -- the same exchanges on uvloop, the loop `edgeproxy serve` runs -------------------------------


async def _uvloop_scenario(config_path: Path) -> list[bytes]:
    origin = RecordingOrigin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", origin.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    origin.port = runner.addresses[0][1]
    config_path.write_text(yaml.safe_dump(distribution(origin.port)))
    bodies: list[bytes] = []
    try:
        async with running_edge(load_config(config_path).config, use_dns=False) as running:
            edge = running.edge
            async with serving(edge) as (_, port), serving(StreamingEdge(edge)) as (_, s_port):
                viewer = await RawViewer.connect(port)
                await viewer.send(b"GET /a HTTP/1.1\r\nHost: edge.test\r\n\r\n" * 2)
                bodies += [(await viewer.response()).body, (await viewer.response()).body]
                await viewer.request("POST", "/form", body=b"payload")
                bodies.append((await viewer.response()).body)
                await viewer.close()
                streamed = await RawViewer.connect(s_port)
                await streamed.request("GET", "/s")
                bodies.append((await streamed.response()).body)
                await streamed.close()
    finally:
        await runner.cleanup()
    assert [r.path for r in origin.seen] == ["/a", "/form", "/s"]
    return bodies


def test_the_same_exchanges_on_uvloop(tmp_path: Path):
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        bodies = runner.run(_uvloop_scenario(tmp_path / "distribution.yaml"))
    assert bodies == [
        b"origin body for /a",
        b"origin body for /a",
        b"origin body for /form",
        b"origin body for /s",
    ]
