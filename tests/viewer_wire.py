"""Test helpers for the viewer protocol: a raw-socket viewer that reads responses byte by
byte off the wire, ``exchange_bytes`` and ``single_response`` to check that the edge wrote
exactly one well-formed response, a spy that records the ``EdgeRequest`` values the server
hands to the real edge, and ``serving`` to run a ``ViewerServer`` with chosen bounds on a
free port."""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from edgeproxy.messages import EdgeRequest, EdgeResponse
from edgeproxy.pipeline import Edge
from edgeproxy.server.listeners import Listener, ViewerServer

WAIT_S = 5.0  # bound on every read: a test never hangs, it fails
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ([\t\x20-\x7e\x80-\xff]*)")
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+): ([\t\x20-\x7e\x80-\xff]*)")


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool = False

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


class RawViewer:
    """One TCP (or TLS) connection speaking bytes, with a small HTTP/1.1 response reader."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, host: str = "127.0.0.1", ssl_context: ssl.SSLContext | None = None
    ) -> RawViewer:
        reader, writer = await asyncio.open_connection(
            host, port, ssl=ssl_context, server_hostname=host if ssl_context else None
        )
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, method: str, target: str, *headers: str, body: bytes = b"") -> None:
        lines = [f"{method} {target} HTTP/1.1", "Host: edge.test", *headers]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        await self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    async def response(self, *, head_only: bool = False) -> RawResponse:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), WAIT_S)
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        _, status, reason = status_line.split(" ", 2)
        headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in lines)]
        found = RawResponse(int(status), reason, headers, b"")
        if head_only or found.status < 200 or found.status in (204, 304):
            return found
        if found.header("transfer-encoding") == "chunked":
            found.body, found.chunked = await self._chunks(), True
        elif found.header("content-length") is not None:
            length = int(found.header("content-length") or 0)
            found.body = await asyncio.wait_for(self.reader.readexactly(length), WAIT_S)
        else:
            found.body = await self.rest()
        return found

    async def _chunks(self) -> bytes:
        body = b""
        while True:
            size = int(await asyncio.wait_for(self.reader.readline(), WAIT_S), 16)
            data = await asyncio.wait_for(self.reader.readexactly(size + 2), WAIT_S)
            if size == 0:
                return body
            body += data[:-2]

    async def rest(self) -> bytes:
        """Everything until the server closes (bounded by WAIT_S)."""
        return await asyncio.wait_for(self.reader.read(), WAIT_S)

    async def closed_by_server(self) -> bool:
        """True when the server closes (EOF or reset) with nothing more sent."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), WAIT_S)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def exchange_bytes(port: int, request: bytes) -> bytes:
    """Send ``request`` (which should ask for ``Connection: close``) on a fresh connection;
    every byte the edge wrote until it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.read(), WAIT_S * 2)
    finally:
        writer.close()


def single_response(data: bytes) -> RawResponse:
    """``data`` (everything the edge wrote before closing) as exactly one well-formed
    response: a status line, header lines that are each a token, ": " and a value free of
    CR, LF, NUL and other controls but HTAB, a blank line, then exactly Content-Length bytes
    of body and nothing after them (no second response)."""
    head, blank, body = data.partition(b"\r\n\r\n")
    assert blank, f"no end of head in {data[:300]!r}"
    status_line, *lines = head.split(b"\r\n")
    status = _STATUS_LINE.fullmatch(status_line)
    assert status is not None, f"malformed status line {status_line!r}"
    headers = []
    for line in lines:
        header = _HEADER_LINE.fullmatch(line)
        assert header is not None, f"malformed header line {line!r}"
        headers.append((header[1].decode("latin-1"), header[2].decode("latin-1")))
    found = RawResponse(int(status[1]), status[2].decode("latin-1"), headers, body)
    assert found.headers_named("content-length") == [str(len(body))], "bytes after the body"
    return found


@dataclass
class SpyEdge:
    """The real edge, with every request the server hands it recorded as it arrived."""

    edge: Edge
    requests: list[EdgeRequest] = field(default_factory=list)

    @property
    def identity(self) -> Any:
        return self.edge.identity

    def hit(self, request: EdgeRequest) -> EdgeResponse | None:
        return None  # every request through ``handle``, where it is recorded

    async def handle(self, request: EdgeRequest) -> EdgeResponse:
        self.requests.append(replace(request, headers=list(request.headers)))
        return await self.edge.handle(request)


@asynccontextmanager
async def serving(
    edge: Any,
    *,
    scheme: str = "http",
    ssl_context: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
    **bounds: Any,
) -> AsyncIterator[tuple[ViewerServer, int]]:
    """A ``ViewerServer`` for ``edge`` on ``host``, a free port; stopped on exit."""
    server = ViewerServer(edge, **bounds)
    await server.start([Listener(host, 0, scheme, ssl_context)])
    try:
        yield server, server.bound[scheme]
    finally:
        await server.stop()
