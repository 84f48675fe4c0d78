"""An origin on loopback that answers Range requests in the ways origins do: honouring them
(a 206 with Content-Range), ignoring them (a 200), sending the body chunked, or sending only a
part of what was asked. Every request's headers are recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDictProxy

HONOURS, IGNORES, CHUNKED, PART = "honours", "ignores", "chunked", "part"


@dataclass
class RangeOrigin:
    body: bytes = b"0123456789abcdef"
    mode: str = HONOURS
    headers: dict[str, str] = field(default_factory=lambda: {"Cache-Control": "max-age=60"})
    part_size: int = 8  # what PART sends at most
    cut_after: int | None = None  # close the connection after this many body bytes
    port: int = 0
    seen: list[CIMultiDictProxy[str]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.headers)
        headers = {"Content-Type": "application/octet-stream", **self.headers}
        wanted = request.headers.get("Range")
        if self.mode == CHUNKED:
            return await self._chunked(request, headers)
        if wanted is None or self.mode == IGNORES:
            return await self._send(request, 200, headers, self.body)
        first_text, _, last_text = wanted.removeprefix("bytes=").partition("-")
        first = int(first_text)
        last = min(int(last_text) if last_text else len(self.body) - 1, len(self.body) - 1)
        if self.mode == PART:
            last = min(last, first + self.part_size - 1)
        headers["Content-Range"] = f"bytes {first}-{last}/{len(self.body)}"
        return await self._send(request, 206, headers, self.body[first : last + 1])

    async def _send(
        self, request: web.Request, status: int, headers: dict[str, str], body: bytes
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        sent = body if self.cut_after is None else body[: self.cut_after]
        for start in range(0, len(sent), 1 << 20):
            await response.write(sent[start : start + (1 << 20)])
        if self.cut_after is not None:
            assert request.transport is not None
            request.transport.close()  # dies mid-body
            return response
        await response.write_eof()
        return response

    async def _chunked(self, request: web.Request, headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(self.body[:5])
        await response.write(self.body[5:])
        await response.write_eof()
        return response


@asynccontextmanager
async def start_range_origin(origin: RangeOrigin) -> AsyncIterator[RangeOrigin]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", origin.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin.port = runner.addresses[0][1]
    try:
        yield origin
    finally:
        await runner.cleanup()
