"""aiohttp glue for the viewer side: listeners, request/response conversion. Kept thin: all
decisions are the pipeline's."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

from aiohttp import web
from multidict import CIMultiDict

from .limits import MAX_REQUEST_HEAD
from .messages import EdgeRequest, EdgeResponse
from .pipeline import Edge

# aiohttp's own line limits are raised so that CloudFront's limits (checked by the edge,
# answered 413) are the ones viewers meet, not aiohttp's 400.
_KEEPALIVE_S = 60.0


@dataclass(frozen=True, slots=True)
class Listener:
    """A viewer-facing socket: where it binds and which scheme viewers use on it."""

    host: str
    port: int
    scheme: str = "http"
    ssl_context: ssl.SSLContext | None = None


class ViewerServer:
    """Serves an ``Edge`` on one or more listeners."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self._servers: list[asyncio.AbstractServer] = []
        self._handlers: list[web.Server] = []
        self.bound: dict[str, int] = {}  # scheme → port actually bound

    async def start(self, listeners: list[Listener]) -> None:
        loop = asyncio.get_running_loop()
        for listener in listeners:
            handler = web.Server(
                self._handler_for(listener.scheme),
                keepalive_timeout=_KEEPALIVE_S,
                max_line_size=MAX_REQUEST_HEAD,
                max_field_size=MAX_REQUEST_HEAD,
            )
            server = await loop.create_server(
                handler, listener.host, listener.port, ssl=listener.ssl_context
            )
            self._handlers.append(handler)
            self._servers.append(server)
            self.bound[listener.scheme] = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for handler in self._handlers:
            await handler.shutdown(timeout=1.0)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._handlers.clear()

    def _handler_for(self, scheme: str):  # type: ignore[no-untyped-def]
        edge = self.edge

        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            edge_request = await to_edge_request(request, scheme)
            return to_web_response(await edge.handle(edge_request))

        return handle


async def to_edge_request(request: web.BaseRequest, scheme: str) -> EdgeRequest:
    """aiohttp's request as the edge's own value, headers exactly as on the wire."""
    path, _, query = request.raw_path.partition("?")
    peer = request.transport.get_extra_info("peername") if request.transport else None
    ip, port = (peer[0], peer[1]) if peer else ("127.0.0.1", 0)
    return EdgeRequest(
        method=request.method,
        uri=path,
        querystring=query,
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers],
        client_ip=ip,
        client_port=port,
        body=await request.read() if request.body_exists else b"",
        scheme=scheme,
        http_version=f"{request.version.major}.{request.version.minor}",
    )


def to_web_response(response: EdgeResponse) -> web.Response:
    headers = CIMultiDict(response.headers)
    headers.setdefault("Server", "CloudFront")
    return web.Response(
        status=response.status,
        reason=response.reason or None,
        headers=headers,
        body=response.body,
    )
