"""Shared fixtures: a real origin and a real edge on random loopback ports, an injectable
clock, and configs written as real files."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from redis_server import RedisServer

from edgeproxy.config.loading import load_config
from edgeproxy.runtime import RunningEdge, running_edge

HANDLERS = Path(__file__).parent / "data" / "handlers"


def pytest_configure(config: pytest.Config) -> None:
    """The plugin tests/test_testing_plugin.py tests comes from the pytest11 entry point once
    edgeproxy is installed (``make test``); an install older than the plugin: loaded here."""
    if not config.pluginmanager.has_plugin("edgeproxy"):
        config.pluginmanager.import_plugin("edgeproxy.testing.plugin")


class FakeClock:
    """A clock the tests move by hand: TTLs expire without sleeping."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class OriginResponse:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: {"Cache-Control": "max-age=60"})
    body: str | None = None  # None: "origin body for <path>"
    etag: str | None = None  # answers 304 to a matching If-None-Match
    gate: asyncio.Event | None = None  # the answer waits until the test sets it
    echo: str | None = None  # the body is "page for <this request header's value>"
    gzip_when_asked: bool = False  # gzip the body when the request's Accept-Encoding has gzip


@dataclass
class RecordingOrigin:
    """An origin that records every request and answers per path as the test says."""

    port: int = 0
    seen: list[web.Request] = field(default_factory=list)
    responses: dict[str, OriginResponse] = field(default_factory=dict)

    def requests_for(self, path: str) -> list[web.Request]:
        return [r for r in self.seen if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen.append(request)
        spec = self.responses.get(request.path, OriginResponse())
        if spec.gate is not None:
            await spec.gate.wait()
        headers = dict(spec.headers)
        if spec.etag is not None:
            headers["ETag"] = spec.etag
            if request.headers.get("If-None-Match") == spec.etag:
                return web.Response(status=304, headers=headers)
        body = spec.body if spec.body is not None else f"origin body for {request.path}"
        if spec.echo is not None:
            body = f"page for {request.headers.get(spec.echo)}"
        if spec.gzip_when_asked and "gzip" in request.headers.get("Accept-Encoding", ""):
            headers |= {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return web.Response(
                status=spec.status, headers=headers, body=gzip.compress(body.encode())
            )
        return web.Response(status=spec.status, headers=headers, text=body)


@asynccontextmanager
async def start_recording_origin(recording: RecordingOrigin) -> AsyncIterator[RecordingOrigin]:
    """Serve ``recording`` on a random loopback port until the block ends."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recording.port = runner.addresses[0][1]
    try:
        yield recording
    finally:
        await runner.cleanup()


@pytest.fixture
async def origin() -> AsyncIterator[RecordingOrigin]:
    async with start_recording_origin(RecordingOrigin()) as recording:
        yield recording


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def handler(spec: str) -> str:
    """``"flow_mark.py:viewer_response"`` → an absolute spec under tests/data/handlers."""
    file, _, func = spec.partition(":")
    return f"{HANDLERS / file}:{func or 'handler'}"


def distribution(origin_port: int, **default_behavior: Any) -> dict[str, Any]:
    """A minimal distribution in front of the test origin; keyword arguments are merged
    into the default cache behavior."""
    behavior: dict[str, Any] = {
        "target_origin_id": "test",
        "viewer_protocol_policy": "allow-all",
        "allowed_methods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
        "cached_methods": ["GET", "HEAD"],
        "forwarded_values": {"query_string": False, "cookies": {"forward": "none"}},
    }
    behavior.update(default_behavior)
    return {
        "distribution": {
            "origin": [
                {
                    "origin_id": "test",
                    "domain_name": "127.0.0.1",
                    "custom_origin_config": {
                        "http_port": origin_port,
                        "https_port": 443,
                        "origin_protocol_policy": "http-only",
                        "origin_ssl_protocols": ["TLSv1.2"],
                    },
                }
            ],
            "default_cache_behavior": behavior,
            # the Host the raw-socket viewers send (viewer_wire.py); any other foreign Host
            # gets CloudFront's 403, as from a distribution without that alias
            "aliases": ["edge.test"],
        },
        "edge": {"listeners": {"host": "127.0.0.1", "http_port": 0}, "admin": {"port": 0}},
    }


WriteConfig = Callable[[dict[str, Any]], Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    def write(document: dict[str, Any]) -> Path:
        path = tmp_path / "distribution.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    return write


@dataclass
class Viewer:
    """A viewer (httpx) talking to a running edge, plus the edge's admin API."""

    running: RunningEdge
    client: httpx.AsyncClient

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(self.running.url(path), **kwargs)

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, self.running.url(path), **kwargs)

    async def exchanges(self) -> list[dict[str, Any]]:
        response = await self.client.get(f"{self.running.admin_url}/exchanges")
        records: list[dict[str, Any]] = response.json()
        return records

    async def last_stages(self) -> list[str]:
        stages: list[str] = (await self.exchanges())[-1]["stages"]
        return stages

    async def stats(self) -> dict[str, Any]:
        response = await self.client.get(f"{self.running.admin_url}/stats")
        found: dict[str, Any] = response.json()
        return found


StartEdge = Callable[[dict[str, Any]], Any]


@pytest.fixture
async def start_edge(
    write_config: WriteConfig, clock: FakeClock
) -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    """``viewer = await start_edge(document)``: a real edge serving ``document``."""
    stack: list[Any] = []

    async def start(document: dict[str, Any]) -> Viewer:
        config = load_config(write_config(document)).config
        context = running_edge(config, clock=clock, use_dns=False)
        running = await context.__aenter__()
        client = httpx.AsyncClient(timeout=10)
        stack.append((context, client))
        return Viewer(running, client)

    yield start
    for context, client in reversed(stack):
        await client.aclose()
        await context.__aexit__(None, None, None)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of the test's own on a free loopback port, stopped by PID after."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
