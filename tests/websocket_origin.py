"""A WebSocket origin for tests (aiohttp's own WebSocket server on a random loopback port)
and the helpers that speak WebSocket on the wire: a raw handshake, a masked client frame."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import Viewer, distribution
from multidict import CIMultiDict

WAIT_S = 10.0  # bound on every wait: a test never hangs, it fails
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
WS_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WAIT_S)


@dataclass
class Seen:
    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes


@dataclass
class WebSocketOrigin:
    """An origin that records every request: /ws echoes WebSocket messages (and serves a
    cacheable page to plain GETs), /quiet accepts a WebSocket and never sends, /refuse
    answers 403 to everything, any other path a cacheable page."""

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)  # WebSockets whose connection ended

    def upgrades(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path and s.headers.get("Upgrade") == "websocket"]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, CIMultiDict(request.headers), body))
        if request.path == "/refuse":
            return web.Response(status=403, text="no sockets here")
        socket = web.WebSocketResponse()
        if request.path in ("/ws", "/quiet") and socket.can_prepare(request).ok:
            await socket.prepare(request)
            async for message in socket:
                if request.path == "/quiet":
                    continue
                if message.type is aiohttp.WSMsgType.TEXT:
                    await socket.send_str(message.data)
                elif message.type is aiohttp.WSMsgType.BINARY:
                    await socket.send_bytes(message.data)
            self.ended.append(request.path)
            return socket
        text = f"origin body for {request.path}"
        return web.Response(text=text, headers={"Cache-Control": "max-age=60"})


@asynccontextmanager
async def running(recording: WebSocketOrigin) -> AsyncIterator[WebSocketOrigin]:
    """Serve ``recording`` on a random loopback port until the block ends."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recording.port = runner.addresses[0][1]
    try:
        yield recording
    finally:
        await runner.cleanup()


def websocket_distribution(
    origin: WebSocketOrigin, hooks: list[dict[str, Any]] | None = None, **behavior: Any
) -> dict[str, Any]:
    """A caching behavior whose origin request policy forwards every viewer header, as
    CloudFront's WebSocket page asks (Sec-WebSocket-Key and -Version must reach the origin)."""
    document = distribution(
        origin.port,
        cache_policy_id="CachingOptimized",
        origin_request_policy_id="AllViewer",
        lambda_function_association=hooks or [],
        **behavior,
    )
    document["distribution"]["default_cache_behavior"].pop("forwarded_values")
    return document


def handshake(path: str, *extra: str, method: str = "GET") -> tuple[bytes, str]:
    """A raw WebSocket handshake request and the Sec-WebSocket-Accept it must get."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: edge.test",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), accept


def masked_text_frame(text: str) -> bytes:
    """One client-to-server text frame (FIN, masked, payload under 126 bytes)."""
    payload = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + masked


def edge_port(viewer: Viewer) -> int:
    return viewer.running.ports["http"]


async def log_lines(caplog: pytest.LogCaptureFixture, marker: str, count: int) -> list[str]:
    """Access lines holding ``marker``, waiting (bounded) until ``count`` are written."""
    for _ in range(int(WAIT_S / 0.05)):
        found = [r.getMessage() for r in caplog.records if marker in r.getMessage()]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    return found
