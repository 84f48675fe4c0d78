"""A fake origin for tests: scripted answers per path (status, headers, body, delay) and a
record of every request it received, on a free loopback port."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from edgeproxy.testing.loop import LoopThread

ANY_PATH = "*"


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake origin answers for a path. ``delay``: seconds before the answer starts
    (an origin timeout, or requests that overlap while one is in flight)."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | str = b""
    delay: float = 0.0

    def encoded(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


# What a path nobody scripted gets: a 404 that says so, never cached by the edge's defaults
# longer than it takes to notice.
UNSCRIPTED = Reply(404, {"Content-Type": "text/plain", "Cache-Control": "no-store"})


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the origin received it. ``headers`` is case-insensitive and keeps
    repeated names (``headers.getall("x-forwarded-for")``)."""

    method: str
    path: str
    query_string: str
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def request_id(self) -> str | None:
        """The X-Amz-Cf-Id the edge sent: the id of the exchange that made this request."""
        return self.headers.get("X-Amz-Cf-Id")


class FakeOrigin:
    """``route()`` scripts a path; ``received`` lists what arrived, oldest first."""

    def __init__(self, loop: LoopThread) -> None:
        self._loop = loop
        self._routes: dict[str, Reply] = {}
        self._received: list[ReceivedRequest] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- scripting ---------------------------------------------------------------------------

    def route(
        self,
        path: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        body: bytes | str = b"",
        delay: float = 0.0,
    ) -> FakeOrigin:
        """Answer ``path`` (exact, or a prefix ending in ``*``; ``"*"`` alone: every path not
        scripted otherwise) with this reply. Scripting a path again replaces its reply."""
        if not path.startswith("/") and path != ANY_PATH:
            raise ValueError(f"a route is a path starting with / or ending in *, not {path!r}")
        self._routes[path] = Reply(status, dict(headers or {}), body, delay)
        return self

    def reply_for(self, path: str) -> Reply:
        """The reply for ``path``: its exact route, else the longest prefix route."""
        exact = self._routes.get(path)
        if exact is not None:
            return exact
        prefixes = [p for p in self._routes if p.endswith("*") and path.startswith(p[:-1])]
        if prefixes:
            return self._routes[max(prefixes, key=len)]
        return UNSCRIPTED

    # -- what arrived ------------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedRequest]:
        return list(self._received)

    def requests_for(self, path: str) -> list[ReceivedRequest]:
        return [r for r in self._received if r.path == path]

    def requests_of(self, request_id: str) -> list[ReceivedRequest]:
        """What the exchange ``request_id`` (its X-Amz-Cf-Id) made the origin receive."""
        return [r for r in self._received if r.request_id == request_id]

    def clear(self) -> None:
        self._received.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- serving -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self._received.append(
            ReceivedRequest(
                request.method,
                request.path,
                request.query_string,
                CIMultiDictProxy(CIMultiDict(request.headers)),
                body,
            )
        )
        reply = self.reply_for(request.path)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        content = reply.encoded()
        if reply is UNSCRIPTED:
            content = f"fake origin: no route for {request.path}".encode()
        return web.Response(status=reply.status, headers=dict(reply.headers), body=content)

    def start(self) -> FakeOrigin:
        self._loop.run(self._start)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self._loop.run(runner.cleanup)
