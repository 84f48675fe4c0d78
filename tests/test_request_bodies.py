"""Viewer request bodies stream through the edge and are never kept: a 512 MiB POST passes to
the origin (or is refused) with the edge's memory flat, ``100 Continue`` comes only once the
request passed every check that could refuse it, a handler with include_body sees CloudFront's
truncated copy while the origin gets every byte, and nothing of a body stays behind its
exchange (history, connection). The memory tests run the edge as its own process
(``python -m edgeproxy.cli serve``) and read its RSS from /proc."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from conftest import RecordingOrigin, StartEdge, distribution, handler
from test_demo import free_port
from viewer_wire import RawViewer, serving

from edgeproxy.routes import Route
from edgeproxy.server.context import ViewerContext

ROOT = Path(__file__).parent.parent
MIB = 1 << 20
BIG = 512 * MIB
RSS_MARGIN = 64 * MIB
CHUNK = b"b" * MIB  # the client sends this one object again and again: never 512 MiB held


# -- an edge of its own, and an origin that discards ------------------------------------------


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@contextmanager
def edge_process(document: dict[str, Any], tmp_path: Path) -> Iterator[tuple[int, int]]:
    """``edgeproxy serve`` for ``document`` as a separate process: (viewer port, pid)."""
    port, admin = free_port(), free_port()
    document["edge"]["listeners"]["http_port"] = port
    document["edge"]["admin"]["port"] = admin
    config = tmp_path / "distribution.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    command = [sys.executable, "-m", "edgeproxy.cli", "--log-level", "WARNING", "serve"]
    command += ["--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, "edgeproxy serve exited early"
            try:
                httpx.get(f"http://127.0.0.1:{admin}/stats")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "edgeproxy serve did not come up"
                time.sleep(0.1)
        yield port, process.pid
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class DiscardingOrigin:
    """An origin on plain threads and blocking sockets (fast enough for 512 MiB on a busy
    machine): reads each request's Content-Length body to its end, keeps only its size,
    answers it and closes."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(120)
            head = b""
            while b"\r\n\r\n" not in head:
                data = connection.recv(65536)
                if not data:
                    return
                head += data
            head, _, first = head.partition(b"\r\n\r\n")
            length = int(_header(head, b"content-length") or 0)
            size = len(first)
            while size < length:
                data = connection.recv(MIB)
                if not data:
                    return  # cut short: never counted
                size += len(data)
            self.sizes.append(size)
            text = str(size).encode()
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(text), text)
            )


def _header(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    return None


@contextmanager
def discarding_origin() -> Iterator[DiscardingOrigin]:
    origin = DiscardingOrigin()
    try:
        yield origin
    finally:
        origin.close()


@contextmanager
def rss_peak(pid: int) -> Iterator[list[int]]:
    """``[peak]``: the RSS of ``pid`` sampled every 20 ms while the block runs."""
    peak = [_rss(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def upload(port: int, method: str, path: str, size: int) -> tuple[bytes, int]:
    """Send ``size`` bytes as the body of ``method path``, a megabyte at a time, whatever the
    edge answers meanwhile; then read the answer to the end of the connection (``Connection:
    close``). (answer head and body, bytes sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as viewer:
        head = f"{method} {path} HTTP/1.1\r\nHost: edge.test\r\nContent-Length: {size}\r\n"
        viewer.sendall(head.encode() + b"Connection: close\r\n\r\n")
        sent = 0
        try:
            while sent < size:
                piece = CHUNK[: min(MIB, size - sent)]
                viewer.sendall(piece)
                sent += len(piece)
        except ConnectionError:
            pass  # the edge closed after answering: the answer is still to be read
        answer = b""
        while data := viewer.recv(65536):
            answer += data
        return answer, sent


def _behavior(port: int, path: str, **settings: Any) -> dict[str, Any]:
    behavior = distribution(port)["distribution"]["default_cache_behavior"]
    return {**behavior, "path_pattern": path, **settings}


def refusing_document(port: int) -> dict[str, Any]:
    document = distribution(port)
    document["distribution"]["ordered_cache_behavior"] = [
        _behavior(port, "/read-only/*", allowed_methods=["GET", "HEAD"]),
    ]
    return document


def warm_up(port: int) -> None:
    answer, _ = upload(port, "POST", "/warm", 4 * MIB)
    assert answer.startswith(b"HTTP/1.1 200")


def test_512_mib_post_streams_to_the_origin_with_flat_memory(tmp_path: Path):
    with (
        discarding_origin() as origin,
        edge_process(distribution(origin.port), tmp_path) as (
            port,
            pid,
        ),
    ):
        warm_up(port)
        baseline = _rss(pid)
        with rss_peak(pid) as peak:
            answer, sent = upload(port, "POST", "/upload", BIG)
        after = _rss(pid)
    assert sent == BIG
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(str(BIG).encode())  # the origin got every byte
    assert origin.sizes == [4 * MIB, BIG]
    assert peak[0] - baseline < RSS_MARGIN, f"peak +{(peak[0] - baseline) >> 20} MiB"
    assert after - baseline < RSS_MARGIN, f"after +{(after - baseline) >> 20} MiB"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/read-only/upload"), ("GET", "/with-body")],
    ids=["method not allowed", "GET with a body"],
)
def test_512_mib_refused_body_is_never_held(tmp_path: Path, method: str, path: str):
    with (
        discarding_origin() as origin,
        edge_process(refusing_document(origin.port), tmp_path) as (
            port,
            pid,
        ),
    ):
        warm_up(port)
        baseline = _rss(pid)
        with rss_peak(pid) as peak:
            answer, _ = upload(port, method, path, BIG)
        after = _rss(pid)
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"Connection: close" in answer.partition(b"\r\n\r\n")[0]
    assert origin.sizes == [4 * MIB]  # the warm-up alone reached the origin
    assert peak[0] - baseline < RSS_MARGIN, f"peak +{(peak[0] - baseline) >> 20} MiB"
    assert after - baseline < RSS_MARGIN, f"after +{(after - baseline) >> 20} MiB"


# -- 100 Continue only after the checks --------------------------------------------------------


def continue_document(port: int) -> dict[str, Any]:
    generate = {
        "event_type": "viewer-request",
        "handler": handler("flow_generate.py:viewer_request"),
    }
    reads = {
        "event_type": "viewer-request",
        "handler": handler("reads_truncated_body.py"),
        "include_body": True,
    }
    document = distribution(port)
    document["distribution"]["ordered_cache_behavior"] = [
        _behavior(port, "/read-only/*", allowed_methods=["GET", "HEAD"]),
        _behavior(port, "/secure/*", viewer_protocol_policy="https-only"),
        _behavior(port, "/generated/*", lambda_function_association=[generate]),
        _behavior(port, "/reads/*", lambda_function_association=[reads]),
    ]
    return document


def _expecting(method: str, path: str, length: int) -> bytes:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: edge.test\r\nContent-Length: {length}\r\n"
        "Expect: 100-continue\r\n\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/read-only/x", 403),
        ("GET", "/anything", 403),
        ("POST", "/secure/x", 403),
        ("PUT", "/generated/x", 200),
    ],
    ids=["method not allowed", "GET with a body", "https-only", "viewer-request generated"],
)
async def test_a_refused_request_gets_its_answer_instead_of_100_continue(
    origin: RecordingOrigin, start_edge: StartEdge, method: str, path: str, status: int
):
    running = await start_edge(continue_document(origin.port))
    async with serving(running.running.edge) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.send(_expecting(method, path, MIB))
        response = await viewer.response()  # the first thing on the wire
        assert response.status == status
        assert response.header("connection") == "close"  # the body was never read
        assert await viewer.closed_by_server()
    assert origin.seen == []


async def test_100_continue_comes_when_the_body_is_needed(
    origin: RecordingOrigin, start_edge: StartEdge
):
    running = await start_edge(continue_document(origin.port))
    async with serving(running.running.edge) as (_, port):
        viewer = await RawViewer.connect(port)
        body = os.urandom(50 * 1024)
        await viewer.send(_expecting("POST", "/reads/x", len(body)))
        interim = await asyncio.wait_for(viewer.reader.readuntil(b"\r\n\r\n"), 5)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        await viewer.send(body)
        response = await viewer.response()
        assert response.status == 200
        assert response.header("connection") == "keep-alive"  # whole body read: it goes on
        await viewer.close()
    (seen,) = origin.requests_for("/reads/x")
    assert seen.headers["X-Seen-Length"] == str(40 * 1024)
    assert seen.headers["X-Input-Truncated"] == "true"
    assert await seen.read() == body
    assert "Expect" not in seen.headers


# -- include body on a stream ------------------------------------------------------------------


@asynccontextmanager
async def counting_origin() -> AsyncIterator[tuple[int, list[tuple[str | None, int]]]]:
    """An aiohttp origin that reads each body as it streams in: (Transfer-Encoding, size)."""
    seen: list[tuple[str | None, int]] = []

    async def handle(request: web.Request) -> web.Response:
        size = 0
        async for data in request.content.iter_any():
            size += len(data)
        seen.append((request.headers.get("Transfer-Encoding"), size))
        return web.Response(text=request.headers.get("X-Seen-Length", ""))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1], seen
    finally:
        await runner.cleanup()


async def test_origin_request_sees_1mb_of_a_chunked_8mb_upload_and_the_origin_all(
    start_edge: StartEdge,
):
    async with counting_origin() as (origin_port, seen):
        reads = {
            "event_type": "origin-request",
            "handler": handler("reads_truncated_body.py"),
            "include_body": True,
        }
        viewer = await start_edge(distribution(origin_port, lambda_function_association=[reads]))

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(8):
                yield CHUNK

        response = await viewer.request("POST", "/chunked", content=chunks())
    assert response.status_code == 200
    assert response.text == str(MIB)  # the handler saw 1 MB
    assert seen == [("chunked", 8 * MIB)]  # the origin all of it, chunked as it came


# -- nothing of a body stays behind ------------------------------------------------------------


def _largest_bytes(roots: list[object], skip: tuple[type, ...]) -> int:
    """The largest bytes-like object reachable from ``roots`` through containers and the
    edge's own objects (not through ``skip`` types, modules, classes or functions)."""
    seen: set[int] = set()
    todo = deque(roots)
    largest = 0
    while todo:
        item = todo.popleft()
        if id(item) in seen or isinstance(item, skip):
            continue
        seen.add(id(item))
        if isinstance(item, (bytes, bytearray, memoryview)):
            largest = max(largest, len(item))
            continue
        kind = type(item)
        ours = kind.__module__.startswith("edgeproxy")
        if ours or kind in (list, tuple, dict, set, deque):
            todo.extend(gc.get_referents(item))
            if ours and hasattr(item, "__slots__"):
                for name in getattr(kind, "__slots__", ()):
                    todo.append(getattr(item, name, None))
    return largest


async def test_a_body_is_not_kept_in_the_exchange_history(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(distribution(origin.port))
    body = os.urandom(512 * 1024)
    response = await viewer.request("POST", "/kept", content=body)
    assert response.status_code == 200
    assert await origin.requests_for("/kept")[0].read() == body
    edge = viewer.running.edge
    assert _largest_bytes(list(edge.recent), (Route,)) < 64 * 1024


async def test_a_body_is_not_kept_by_its_connection(origin: RecordingOrigin, start_edge: StartEdge):
    running = await start_edge(distribution(origin.port))
    async with serving(running.running.edge) as (server, port):
        viewer = await RawViewer.connect(port)
        await viewer.request("POST", "/kept", body=os.urandom(512 * 1024))
        assert (await viewer.response()).status == 200
        await asyncio.sleep(0.05)
        (connection,) = server.context.connections  # idle, kept alive for the next request
        assert _largest_bytes([connection], (ViewerContext, Route)) < 64 * 1024
        await viewer.close()


async def test_a_body_cut_short_never_reaches_the_origin_whole(
    origin: RecordingOrigin, start_edge: StartEdge
):
    running = await start_edge(distribution(origin.port))
    async with serving(running.running.edge) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.send(
            b"POST /cut HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 1048576\r\n\r\n"
            + b"x" * 100_000
        )
        await asyncio.sleep(0.2)
        await viewer.close()  # 100,000 bytes of 1,048,576, then gone
        await asyncio.sleep(0.5)
    assert origin.seen == []  # the origin never got a complete request


async def test_a_body_after_connection_close_is_never_read(
    origin: RecordingOrigin, start_edge: StartEdge
):
    running = await start_edge(distribution(origin.port))
    async with serving(running.running.edge) as (_, port):
        viewer = await RawViewer.connect(port)
        await viewer.send(
            b"GET /last HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n"
            b"POST /after HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 5\r\n\r\nhello"
        )
        assert (await viewer.response()).body == b"origin body for /last"
        assert await viewer.closed_by_server()
    assert [r.path for r in origin.seen] == ["/last"]


async def test_pipelined_bodies_over_the_buffer_each_reach_their_request(
    origin: RecordingOrigin, start_edge: StartEdge
):
    # Two 600 KB bodies sent at once: the second waits (reading paused) while the first is
    # answered, then streams to its own request; nothing is mixed up or lost.
    running = await start_edge(distribution(origin.port))
    first, second = os.urandom(600_000), os.urandom(600_000)
    async with serving(running.running.edge) as (_, port):
        viewer = await RawViewer.connect(port)
        sending = asyncio.ensure_future(
            viewer.send(
                b"POST /one HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 600000\r\n\r\n"
                + first
                + b"PUT /two HTTP/1.1\r\nHost: edge.test\r\nContent-Length: 600000\r\n\r\n"
                + second
            )
        )
        assert (await viewer.response()).body == b"origin body for /one"
        assert (await viewer.response()).body == b"origin body for /two"
        await sending
        await viewer.close()
    assert await origin.requests_for("/one")[0].read() == first
    assert await origin.requests_for("/two")[0].read() == second
