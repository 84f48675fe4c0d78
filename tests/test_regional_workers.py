"""`edgeproxy serve --workers N` with a regional tier: the workers of one PoP (and of several
PoPs) share the tier on a real redis-server, so the origin sees one request per object.

Each PoP is a real ``edgeproxy serve`` process; its workers share the viewer port
(SO_REUSEPORT), and the kernel spreads new connections over them, so the tests open one
connection per request and read from the parent's ``/stats`` that every worker answered.

CloudFront: edge PoPs share regional edge caches; the origin-facing functions and the origin
fetch happen there (DG HowCloudFrontWorks.html#CloudFrontRegionaledgecaches)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import OriginResponse, RecordingOrigin, distribution
from redis_server import RedisServer, free_port

StartPops = Callable[..., AbstractAsyncContextManager[list["Pop"]]]


class Pop:
    """One PoP: an ``edgeproxy serve --workers 2`` process and its ports."""

    def __init__(self, name: str, port: int, admin: int) -> None:
        self.name, self.port, self.admin = name, port, admin

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def admin_get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.get(f"http://127.0.0.1:{self.admin}{path}")

    async def workers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.admin_get("/stats")).json()["workers"]
        return found


@pytest.fixture
def start_pops(origin: RecordingOrigin, redis_server: RedisServer, tmp_path: Path) -> StartPops:
    """``async with start_pops("A", "B") as pops``: PoPs started at once, stopped by PID."""

    @asynccontextmanager
    async def start(*names: str) -> AsyncIterator[list[Pop]]:
        pops = [Pop(name, free_port(), free_port()) for name in names]
        processes = [_serve(pop, origin, redis_server, tmp_path) for pop in pops]
        try:
            await asyncio.gather(
                *(
                    _when_up(f"http://127.0.0.1:{p.admin}/stats", q)
                    for p, q in zip(pops, processes, strict=True)
                )
            )
            yield pops
        finally:
            for process in processes:
                os.kill(process.pid, signal.SIGINT)
            for process in processes:
                process.wait(timeout=20)

    return start


def _serve(
    pop: Pop, origin: RecordingOrigin, redis_server: RedisServer, folder: Path
) -> subprocess.Popen[bytes]:
    document = distribution(origin.port)
    document["edge"]["listeners"]["http_port"] = pop.port
    document["edge"]["admin"]["port"] = pop.admin
    config = folder / f"{pop.name}.yaml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    command = [sys.executable, "-m", "edgeproxy.cli", "--log-level", "WARNING", "serve"]
    command += ["--config", str(config), "--workers", "2", "--pop", pop.name]
    command += ["--regional-cache", redis_server.url]
    with (folder / f"{pop.name}.log").open("w") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=_env()
        )


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


async def _when_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90  # a loaded machine starts workers slowly
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "edgeproxy serve exited early"
            try:
                await client.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("edgeproxy serve did not come up in 90 s")


async def _one_connection_each(urls: list[str]) -> list[httpx.Response]:
    """Every URL on a connection of its own (no keep-alive), all at once."""
    async with _no_keep_alive(len(urls)) as client:
        return list(await asyncio.gather(*(client.get(url) for url in urls)))


def _no_keep_alive(connections: int) -> httpx.AsyncClient:
    """A client that opens a new connection per request: the kernel spreads them."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=0)
    return httpx.AsyncClient(timeout=30, limits=limits)


async def test_two_workers_of_one_pop_make_one_origin_request(
    origin: RecordingOrigin, start_pops: StartPops
):
    async with start_pops("IAD89-C1") as (pop,):
        answers = []
        async with _no_keep_alive(1) as client:
            for _ in range(40):  # one after the other: the first fetches, the rest are hits
                answers.append(await client.get(pop.url("/shared")))
        assert {r.status_code for r in answers} == {200}
        assert {r.headers["x-cache"] for r in answers[1:]} == {"Hit from cloudfront"}
        workers = await pop.workers()
        assert all(sum(w["responses"].values()) > 0 for w in workers), workers  # both answered
        regional_hits = sum(w["regional"]["hits"] for w in workers)
        assert regional_hits == 1  # the second worker's first request: its cache was empty
        assert len(origin.requests_for("/shared")) == 1
        # The parent's /stats: the PoP, and the regional counters summed over its workers.
        stats = (await pop.admin_get("/stats")).json()
        assert stats["pop"] == "IAD89-C1"
        assert stats["regional"]["hits"] == 1
        assert stats["regional"]["stores"] == 1
        assert stats["regional"]["available"] is True
        metrics = (await pop.admin_get("/metrics")).text.splitlines()
        assert "edgeproxy_regional_hits_total 1.0" in metrics
        assert 'edgeproxy_answered_by_total{source="origin"} 1.0' in metrics
        assert 'edgeproxy_answered_by_total{source="regional"} 1.0' in metrics
        assert "edgeproxy_regional_available 2.0" in metrics  # both workers reach Redis


async def test_200_concurrent_misses_over_two_pops_of_two_workers_make_one_origin_request(
    origin: RecordingOrigin, start_pops: StartPops
):
    gate = asyncio.Event()
    origin.responses["/hot"] = OriginResponse(gate=gate)
    async with start_pops("IAD89-C1", "FRA56-P2") as (a, b):
        urls = [(a if i % 2 else b).url("/hot") for i in range(200)]
        pending = asyncio.ensure_future(_one_connection_each(urls))
        while not origin.seen:  # one fetch holds the origin ...
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # ... while every other viewer arrives and waits
        gate.set()
        answers = await asyncio.wait_for(pending, 30)
        assert {r.status_code for r in answers} == {200}
        assert {r.text for r in answers} == {"origin body for /hot"}
        assert {r.headers["x-amz-cf-pop"] for r in answers} == {"IAD89-C1", "FRA56-P2"}
        for pop in (a, b):
            workers = await pop.workers()
            assert len(workers) == 2
            assert all(sum(w["responses"].values()) > 0 for w in workers), workers
        assert len(origin.requests_for("/hot")) == 1
