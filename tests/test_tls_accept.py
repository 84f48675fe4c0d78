"""Connections to the HTTPS listener before their TLS handshake is done: they count against the
connection cap from the TCP accept, as plain connections do, and one that never finishes its
handshake (silent, or half a ClientHello) is closed at the header bound. On asyncio's loop
(the tests') and on uvloop (``edgeproxy serve``'s)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
import uvloop
import yaml
from conftest import RecordingOrigin, StartEdge, distribution, start_recording_origin
from viewer_wire import WAIT_S, RawViewer, serving

from edgeproxy.config.loading import load_config
from edgeproxy.pipeline import Edge
from edgeproxy.runtime import running_edge

# A TLS record header announcing a 512-byte handshake message, and the start of a ClientHello
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20
HEADER_BOUND = 0.5
MARGIN = 4.0  # a loaded CI machine: the bound is enforced on a tick, well within this


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


def tls_contexts() -> Tls:
    ca = trustme.CA()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server, client)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(WAIT_S / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {WAIT_S} s: {what}")


async def served_over_tls(port: int, tls: Tls) -> int:
    viewer = await RawViewer.connect(port, ssl_context=tls.client)
    await viewer.request("GET", "/page")
    status = (await viewer.response()).status
    await viewer.close()
    return status


# -- the scenarios, run on both loops ---------------------------------------------------------


async def unfinished_handshakes_close_at_the_header_bound(edge: Edge, tls: Tls) -> None:
    bounds = {"header_timeout": HEADER_BOUND, "idle_timeout": 60.0}
    async with serving(edge, scheme="https", ssl_context=tls.server, **bounds) as (server, port):
        loop = asyncio.get_running_loop()
        started = loop.time()
        silent = [await RawViewer.connect(port) for _ in range(3)]
        partial = [await RawViewer.connect(port) for _ in range(3)]
        for viewer in partial:
            await viewer.send(PARTIAL_CLIENT_HELLO)
        await until(lambda: len(server.context.connections) == 6, "all six counted")
        closed = await asyncio.gather(*(v.closed_by_server() for v in [*silent, *partial]))
        elapsed = loop.time() - started
        assert all(closed)
        assert HEADER_BOUND * 0.9 <= elapsed < HEADER_BOUND + MARGIN
        await until(lambda: not server.context.connections, "every place freed")
        assert await served_over_tls(port, tls) == 200  # the listener still serves
        for viewer in [*silent, *partial]:
            await viewer.close()


async def handshakes_under_way_count_against_the_cap(edge: Edge, tls: Tls) -> int:
    bounds = {"max_connections": 2, "header_timeout": 60.0}
    async with serving(edge, scheme="https", ssl_context=tls.server, **bounds) as (server, port):
        stalled = [await RawViewer.connect(port) for _ in range(2)]
        await until(lambda: len(server.context.connections) == 2, "handshakes counted")
        refused = await RawViewer.connect(port)
        assert await refused.closed_by_server()  # closed at once, as a plain connection is
        await refused.close()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await served_over_tls(port, tls)
        await stalled.pop().close()
        await until(lambda: len(server.context.connections) == 1, "a place freed")
        assert await served_over_tls(port, tls) == 200
        await until(lambda: len(server.context.connections) == 1, "the served one gone")
        await stalled.pop().close()
        await until(lambda: not server.context.connections, "every place freed")
        return server.context.refused


# -- on asyncio's loop ------------------------------------------------------------------------


@pytest.fixture
async def edge(origin: RecordingOrigin, start_edge: StartEdge) -> Edge:
    real: Edge = (await start_edge(distribution(origin.port))).running.edge
    return real


async def test_unfinished_handshakes_close_at_the_header_bound(edge: Edge):
    await unfinished_handshakes_close_at_the_header_bound(edge, tls_contexts())


async def test_handshakes_under_way_count_against_the_cap(
    edge: Edge, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="edgeproxy.server")
    assert await handshakes_under_way_count_against_the_cap(edge, tls_contexts()) == 2
    assert "connection cap of 2 reached" in caplog.text


# -- on uvloop --------------------------------------------------------------------------------


async def _on_a_real_edge(path: Path, scenario: Callable[[Edge, Tls], Awaitable[object]]) -> None:
    async with start_recording_origin(RecordingOrigin()) as origin:
        path.write_text(yaml.safe_dump(distribution(origin.port)))
        async with running_edge(load_config(path).config, use_dns=False) as running:
            await scenario(running.edge, tls_contexts())


@pytest.mark.parametrize(
    "scenario",
    [unfinished_handshakes_close_at_the_header_bound, handshakes_under_way_count_against_the_cap],
)
def test_the_same_on_uvloop(tmp_path: Path, scenario: Callable[[Edge, Tls], Awaitable[object]]):
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_on_a_real_edge(tmp_path / "distribution.yaml", scenario))
