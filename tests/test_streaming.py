"""Objects over the cache's object size pass through as a stream: the viewer gets every
byte, nothing is stored, and the edge never holds the body whole."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from conftest import StartEdge, distribution

CHUNK = b"x" * (1 << 20)


async def big_origin(total: int) -> tuple[web.AppRunner, int]:
    """An origin answering every path with ``total`` bytes, written a megabyte at a time."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "max-age=600"})
        response.content_length = total
        await response.prepare(request)
        sent = 0
        while sent < total:
            piece = CHUNK[: min(len(CHUNK), total - sent)]
            await response.write(piece)
            sent += len(piece)
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.fixture
async def origin_of_1gb() -> AsyncIterator[int]:
    runner, port = await big_origin(1 << 30)
    yield port
    await runner.cleanup()


def small_cache(port: int) -> dict:
    """Objects over 1 MB stream through; the disk tier that would keep them is off (it has
    tests of its own, tests/test_disk_cache.py)."""
    document = distribution(port)
    document["edge"]["cache"] = {
        "max_bytes": 64 << 20,
        "max_object_bytes": 1 << 20,
        "disk": {"enabled": False},
    }
    return document


def rss_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def read_all(port: int, path: str) -> tuple[bytes, int]:
    """GET ``path`` on a raw connection, discarding the body: (head, body bytes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    received = 0
    while chunk := await reader.read(1 << 20):
        received += len(chunk)
    writer.close()
    return head, received


async def test_one_gigabyte_streams_through_with_flat_memory(
    origin_of_1gb: int, start_edge: StartEdge
):
    viewer = await start_edge(small_cache(origin_of_1gb))
    port = viewer.running.ports["http"]
    peak = baseline = rss_bytes()
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.02)

    sampler = asyncio.ensure_future(sample())
    head, received = await read_all(port, "/big.iso")
    done.set()
    await sampler
    assert head.startswith(b"HTTP/1.1 200")
    assert b"Content-Length: 1073741824" in head
    assert b"X-Cache: Miss from cloudfront" in head
    assert received == 1 << 30
    assert peak - baseline < 50 << 20, f"RSS grew by {(peak - baseline) >> 20} MB"
    stats = await viewer.stats()
    assert stats["cache"]["stores"] == 0


async def test_streamed_objects_are_not_cached_with_the_disk_tier_off(start_edge: StartEdge):
    runner, port = await big_origin(3 << 20)
    try:
        viewer = await start_edge(small_cache(port))
        for _ in range(2):
            response = await viewer.get("/three-megabytes")
            assert response.status_code == 200
            assert len(response.content) == 3 << 20
            assert response.headers["x-cache"] == "Miss from cloudfront"
        assert (await viewer.stats())["cache"]["stores"] == 0
    finally:
        await runner.cleanup()
