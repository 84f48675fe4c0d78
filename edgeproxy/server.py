"""The viewer listeners: sockets (HTTP and HTTPS) served by the HTTP/1.1 protocol of
``http1.py``, a tick that advances the connections' clock and closes the ones past their
deadline, and an orderly stop. All decisions about requests are the pipeline's.

Slow and idle viewers (issue 5/6): a request head not complete within ``header_timeout``,
a keep-alive connection idle for ``idle_timeout``, a body or a viewer's reading stalled for
``idle_timeout``: the connection is closed without an answer (as nginx does for its
client_header_timeout), since a viewer that trickles its head would not read one either.
A WebSocket tunnel whose origin sends nothing for ``tunnel_idle_timeout`` is closed.
Past ``max_connections`` open connections, new ones are closed at once, with one warning
per burst.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from .http1 import ViewerContext, ViewerProtocol
from .limits import HEADER_TIMEOUT_S, IDLE_TIMEOUT_S, MAX_CONNECTIONS, TUNNEL_IDLE_TIMEOUT_S
from .pipeline import Edge

_STOP_GRACE_S = 1.0  # answers under way get this long when the server stops


@dataclass(frozen=True, slots=True)
class Listener:
    """A viewer-facing socket: where it binds and which scheme viewers use on it."""

    host: str
    port: int
    scheme: str = "http"
    ssl_context: ssl.SSLContext | None = None
    reuse_port: bool = False  # several worker processes share the port (SO_REUSEPORT)


class ViewerServer:
    """Serves an ``Edge`` on one or more listeners."""

    def __init__(
        self,
        edge: Edge,
        *,
        header_timeout: float = HEADER_TIMEOUT_S,
        idle_timeout: float = IDLE_TIMEOUT_S,
        max_connections: int = MAX_CONNECTIONS,
        tunnel_idle_timeout: float = TUNNEL_IDLE_TIMEOUT_S,
    ) -> None:
        self.edge = edge
        self.context = ViewerContext(
            edge,
            header_timeout=header_timeout,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
        )
        self.context.tunnel_idle_timeout = tunnel_idle_timeout
        # The tick's period: a deadline is met within a quarter of the shorter bound.
        self._tick_s = min(1.0, max(0.01, min(header_timeout, idle_timeout) / 4))
        self._servers: list[asyncio.AbstractServer] = []
        self._ticker: asyncio.TimerHandle | None = None
        self.bound: dict[str, int] = {}  # scheme → port actually bound

    async def start(self, listeners: list[Listener]) -> None:
        loop = asyncio.get_running_loop()
        self.context.now = loop.time()
        for listener in listeners:
            server = await loop.create_server(
                self._factory(listener.scheme),
                listener.host,
                listener.port,
                ssl=listener.ssl_context,
                reuse_port=listener.reuse_port or None,
            )
            self._servers.append(server)
            self.bound[listener.scheme] = server.sockets[0].getsockname()[1]
        if self._ticker is None:
            self._ticker = loop.call_later(self._tick_s, self._tick)

    async def stop(self) -> None:
        """Stop listening, let answers under way finish (briefly), close every connection."""
        for server in self._servers:
            server.close()
        connections = self.context.connections
        for connection in list(connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STOP_GRACE_S
        while connections and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(connections):
            connection.timed_out()
        for server in self._servers:
            await server.wait_closed()
        await asyncio.sleep(0)  # let the aborted connections run connection_lost
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        self._servers.clear()

    def _factory(self, scheme: str) -> Callable[[], ViewerProtocol]:
        context = self.context

        def protocol() -> ViewerProtocol:
            return ViewerProtocol(context, scheme)

        return protocol

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.context.now = loop.time()
        self.context.sweep()
        self._ticker = loop.call_later(self._tick_s, self._tick)
