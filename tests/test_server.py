"""The viewer listeners: slow and idle viewers are closed after their bounds, the cap on
connections refuses the excess with one warning per burst, TLS fills EdgeRequest.tls, a
failing edge still answers, and a viewer that leaves mid-answer leaves nothing open.
Bounds are tiny here (0.2 s) and passed in; no test waits for a real bound."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from conftest import RecordingOrigin, StartEdge, distribution, handler
from test_http1 import StreamingEdge
from viewer_wire import WAIT_S, RawViewer, SpyEdge, serving

from edgeproxy.messages import EdgeRequest, EdgeResponse
from edgeproxy.pipeline import Edge
from edgeproxy.server.listeners import Listener, ViewerServer

TINY = 0.2


@pytest.fixture
async def edge(origin: RecordingOrigin, start_edge: StartEdge) -> Edge:
    sleepy = [{"event_type": "viewer-request", "handler": handler("sleeps.py:handler")}]
    document = distribution(origin.port)
    document["distribution"]["ordered_cache_behavior"] = [
        {
            **document["distribution"]["default_cache_behavior"],
            "path_pattern": "/slow/*",
            "lambda_function_association": sleepy,
        }
    ]
    real: Edge = (await start_edge(document)).running.edge
    return real


async def _until(condition: Any, what: str) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    for _ in range(int(WAIT_S / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {WAIT_S} s: {what}")


# -- slow and idle viewers ------------------------------------------------------------------


async def test_a_trickled_head_is_cut_off_at_the_header_bound(edge: Edge):
    spy = SpyEdge(edge)
    async with serving(spy, header_timeout=TINY, idle_timeout=WAIT_S * 2) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.send(b"GET / HTTP/1.1\r\n")

        async def trickle() -> None:  # a byte every 20 ms: never idle, never complete
            try:
                for _ in range(int(WAIT_S / 0.02)):
                    await viewer.send(b"X")
                    await asyncio.sleep(0.02)
            except ConnectionError:
                pass

        trickling = asyncio.create_task(trickle())
        assert await viewer.closed_by_server()
        trickling.cancel()
        await viewer.close()
    assert spy.requests == []


async def test_a_connection_that_sends_nothing_is_closed(edge: Edge):
    async with serving(edge, header_timeout=TINY, idle_timeout=WAIT_S * 2) as (server, port):
        viewer = await RawViewer.connect(port)
        assert await viewer.closed_by_server()
        await viewer.close()
        await _until(lambda: not server.context.connections, "connection released")


async def test_an_idle_keep_alive_connection_is_closed(edge: Edge):
    async with serving(edge, header_timeout=WAIT_S * 2, idle_timeout=TINY) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/page")
        assert (await viewer.response()).status == 200
        assert await viewer.closed_by_server()
        await viewer.close()


async def test_a_slow_answer_is_not_cut_by_the_viewer_bounds(edge: Edge):
    # The edge takes 0.5 s (a handler sleeping) while both bounds are 0.2 s: those bound
    # the viewer, not the answer.
    async with serving(edge, header_timeout=TINY, idle_timeout=TINY) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/slow/x", "X-Sleep: 0.5")
        response = await viewer.response()
        assert response.status == 200
        assert response.body == b"origin body for /slow/x"
        await viewer.close()


async def test_a_body_arriving_steadily_is_read_past_the_header_bound(
    edge: Edge, origin: RecordingOrigin
):
    spy = SpyEdge(edge)
    async with serving(spy, header_timeout=TINY, idle_timeout=WAIT_S) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.send(b"POST /form HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 6\r\n\r\n")
        for piece in (b"ab", b"cd", b"ef"):  # 0.3 s in all, each gap under the idle bound
            await asyncio.sleep(0.1)
            await viewer.send(piece)
        assert (await viewer.response()).status == 200
        await viewer.close()
    assert spy.requests[0].body_size == 6
    assert await origin.requests_for("/form")[0].read() == b"abcdef"


async def test_a_stalled_body_is_cut_off_at_the_idle_bound(edge: Edge, origin: RecordingOrigin):
    spy = SpyEdge(edge)
    async with serving(spy, header_timeout=WAIT_S * 2, idle_timeout=TINY) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.send(b"POST /form HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 6\r\n\r\nab")
        assert await viewer.closed_by_server()
        await viewer.close()
    # Handed over with its head, the request never reached the origin whole: its body failed.
    assert [r.body_size for r in spy.requests] == [2]
    assert origin.seen == []


# -- the cap on connections -------------------------------------------------------------------


async def test_connections_over_the_cap_are_closed_with_one_warning_per_burst(
    edge: Edge, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="edgeproxy.server")
    async with serving(edge, max_connections=2) as (server, port):
        admitted = [await RawViewer.connect(port) for _ in range(2)]
        for viewer in admitted:
            await viewer.request("GET", "/page")
            assert (await viewer.response()).status == 200
        for _ in range(3):  # one burst
            refused = await RawViewer.connect(port)
            assert await refused.closed_by_server()
            await refused.close()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "connection cap of 2 reached" in warnings[0].getMessage()

        await admitted.pop().close()
        await _until(lambda: len(server.context.connections) == 1, "a place freed")
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/page")
        assert (await viewer.response()).status == 200
        assert server.context.refused == 3
        for open_viewer in [*admitted, viewer]:
            await open_viewer.close()


# -- robustness -------------------------------------------------------------------------------


@dataclass
class FailingEdge:
    """The real edge, except that ``/boom`` makes ``handle`` raise (a defect of ours)."""

    edge: Edge

    @property
    def identity(self) -> Any:
        return self.edge.identity

    async def handle(self, request: EdgeRequest) -> EdgeResponse:
        if request.uri == "/boom":
            raise RuntimeError("defect in the edge")
        return await self.edge.handle(request)


async def test_an_exception_in_handle_is_a_502_page_and_the_connection_goes_on(
    edge: Edge, caplog: pytest.LogCaptureFixture
):
    async with serving(FailingEdge(edge)) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/boom")
        failed = await viewer.response()
        await viewer.request("GET", "/fine")
        fine = await viewer.response()
        await viewer.close()
    assert failed.status == 502
    assert failed.header("x-cache") == "Error from cloudfront"
    assert b"<H1>502 ERROR</H1>" in failed.body
    assert fine.body == b"origin body for /fine"
    assert "edge.handle failed for GET /boom" in caplog.text
    assert "RuntimeError: defect in the edge" in caplog.text


def _reset(viewer: RawViewer) -> None:
    """Leave as a crashed or impatient viewer does: a reset, not an orderly close (after
    which the server would still answer what was asked, as HTTP allows)."""
    sock = viewer.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    viewer.writer.transport.abort()


def _serve_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if "Answers._serve" in repr(t.get_coro())]


async def test_a_viewer_leaving_mid_stream_leaves_no_task_or_stream_open(edge: Edge):
    streaming = StreamingEdge(edge, delay=0.05)  # 4 pieces a 0.05 s
    async with serving(streaming) as (server, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/long")
        await asyncio.wait_for(viewer.reader.readuntil(b"\r\n\r\n"), WAIT_S)
        _reset(viewer)  # gone, without reading the rest
        await _until(lambda: streaming.streams and streaming.streams[0].closed == 1, "aclose")
        await _until(lambda: not _serve_tasks(), "no answering task left")
        await _until(lambda: not server.context.connections, "connection released")


async def test_a_viewer_leaving_while_the_edge_works_cancels_the_answer(edge: Edge):
    async with serving(edge) as (server, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("GET", "/slow/y", "X-Sleep: 0.3")
        await _until(lambda: bool(_serve_tasks()), "answer under way")
        (task,) = _serve_tasks()
        _reset(viewer)
        await _until(task.done, "answering task ended")
        assert task.cancelled()
        assert not _serve_tasks()
        await _until(lambda: not server.context.connections, "connection released")


async def test_a_viewer_that_reads_nothing_is_dropped_after_the_idle_bound(edge: Edge):
    # Pipelined requests for an answer far bigger than the socket buffers, never read: the
    # transport pauses writing and, after the idle bound, the server drops the viewer.
    streaming = StreamingEdge(edge, declare_length=False)
    async with serving(streaming, idle_timeout=TINY) as (server, port):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: edge.test\r\n\r\n" * 30_000)
        await _until(lambda: len(streaming.streams) > 1, "answers under way")
        await _until(lambda: not server.context.connections, "stalled viewer dropped")
        sock.close()
    assert all(s.closed == 1 for s in streaming.streams)


async def test_a_viewer_that_half_closes_still_gets_its_answers(edge: Edge):
    async with serving(edge) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.send(
            b"GET /a HTTP/1.1\r\nHost: edge.test\r\n\r\nGET /slow/b HTTP/1.1\r\nHost: edge.test\r\n"
            b"X-Sleep: 0.1\r\n\r\n"
        )
        viewer.writer.write_eof()  # all it will send
        assert (await viewer.response()).body == b"origin body for /a"
        assert (await viewer.response()).body == b"origin body for /slow/b"
        assert await viewer.closed_by_server()
        await viewer.close()


async def test_stop_closes_idle_connections(edge: Edge):
    server = ViewerServer(edge)
    await server.start([Listener("127.0.0.1", 0)])
    viewer = await RawViewer.connect(server.bound["http"])
    await viewer.request("GET", "/page")
    assert (await viewer.response()).status == 200
    await server.stop()
    assert await viewer.closed_by_server()
    await viewer.close()


# -- addresses and TLS ------------------------------------------------------------------------


async def test_ipv6_viewer_address_is_written_without_brackets(edge: Edge):
    spy = SpyEdge(edge)
    async with serving(spy, host="::1") as (_, port):
        viewer = await RawViewer.connect(port, host="::1")
        await viewer.request("GET", "/v6")
        assert (await viewer.response()).status == 200
        await viewer.close()
    assert spy.requests[0].client_ip == "::1"
    assert spy.requests[0].client_port > 0


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls() -> Tls:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server, client)


@pytest.fixture
async def https(edge: Edge, tls: Tls) -> AsyncIterator[tuple[SpyEdge, int]]:
    spy = SpyEdge(edge)
    async with serving(spy, scheme="https", ssl_context=tls.server) as (_, port):
        yield spy, port


async def test_tls_listener_fills_scheme_and_tls(https: tuple[SpyEdge, int], tls: Tls):
    spy, port = https
    viewer = await RawViewer.connect(port, ssl_context=tls.client)
    for _ in range(2):
        await viewer.request("GET", "/secure")
        assert (await viewer.response()).body == b"origin body for /secure"
    ssl_object = viewer.writer.get_extra_info("ssl_object")
    await viewer.close()
    expected = f"{ssl_object.version()}:{ssl_object.cipher()[0]}"
    first, second = spy.requests
    assert first.scheme == "https"
    assert first.tls == f"{expected}:fullHandshake"
    assert second.tls == f"{expected}:connectionReused"


def _blocking_https_get(port: int, context: ssl.SSLContext, session: Any = None) -> Any:
    """A viewer on a plain socket, so a TLS session can be offered again."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as tls:
            tls.sendall(b"GET /resumed HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n")
            while tls.recv(65536):
                pass
            return tls.session


async def test_tls_session_resumption_is_told_apart(https: tuple[SpyEdge, int], tls: Tls):
    spy, port = https
    session = await asyncio.to_thread(_blocking_https_get, port, tls.client)
    await asyncio.to_thread(_blocking_https_get, port, tls.client, session)
    first, resumed = spy.requests
    assert first.tls.endswith(":fullHandshake")
    assert resumed.tls.endswith(":sessionResumed")
