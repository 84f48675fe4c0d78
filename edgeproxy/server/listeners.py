"""The viewer listeners: sockets (HTTP and HTTPS) served by the HTTP/1.1 protocol of
``server/protocol.py``, a tick that advances the connections' clock and closes the ones past their
deadline, and an orderly stop. All decisions about requests are the pipeline's.

Slow and idle viewers (issue 5/6): a request head not complete within ``header_timeout``,
a keep-alive connection idle for ``idle_timeout``, a body or a viewer's reading stalled for
``idle_timeout``: the connection is closed without an answer (as nginx does for its
client_header_timeout), since a viewer that trickles its head would not read one either.
A WebSocket tunnel whose origin sends nothing for ``tunnel_idle_timeout`` is closed.
Past ``max_connections`` open connections, new ones are closed at once, with one warning
per burst.

HTTPS connections are TLS-wrapped here, not by the listener (``loop.start_tls`` rather than
``create_server(ssl=...)``, which hands a connection to its protocol only once the handshake
is done, after up to 60 s): a connection counts against the cap from the TCP accept, and
one whose handshake is not done within ``header_timeout`` (a viewer that sends nothing, or
half a ClientHello) is closed then, as a plain connection that sends no request is.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from edgeproxy.limits import (
    HEADER_TIMEOUT_S,
    IDLE_TIMEOUT_S,
    MAX_CONNECTIONS,
    TUNNEL_IDLE_TIMEOUT_S,
)
from edgeproxy.pipeline import Edge
from edgeproxy.server.context import ViewerContext
from edgeproxy.server.protocol import ViewerProtocol

log = logging.getLogger("edgeproxy.server")

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
                self._factory(listener),
                listener.host,
                listener.port,
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

    def _factory(self, listener: Listener) -> Callable[[], asyncio.Protocol]:
        context, scheme, tls = self.context, listener.scheme, listener.ssl_context

        def protocol() -> asyncio.Protocol:
            return ViewerProtocol(context, scheme) if tls is None else TlsAccept(context, tls)

        return protocol

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self.context.now = loop.time()
        self.context.sweep()
        self._ticker = loop.call_later(self._tick_s, self._tick)



class TlsAccept(asyncio.Protocol):
    """An HTTPS connection until its TLS handshake is done (module docstring). Accepted as
    plain TCP, it takes a place in the cap at once; its socket then goes to the loop's own
    TLS server side (``connect_accepted_socket``), which gives the connection to a
    ``ViewerProtocol`` once the handshake is done, or fails, or is cancelled at the header
    bound. (The socket is handed over, not wrapped with ``start_tls``: uvloop starts reading
    a new connection right after ``connection_made``, and a ClientHello read here would be
    lost to the handshake.)"""

    def __init__(self, context: ViewerContext, tls: ssl.SSLContext) -> None:
        self._context = context
        self._tls = tls
        self._task: asyncio.Task[None] | None = None
        self.deadline = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        context = self._context
        if not context.admit(self):
            tcp.abort()
            return
        self.deadline = context.now + context.header_timeout
        # A copy of the socket, for this transport closes its own (nothing was read yet)
        sock = tcp.get_extra_info("socket").dup()
        tcp.abort()
        self._task = asyncio.get_running_loop().create_task(self._handshake(sock))

    async def _handshake(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(
                lambda: _HandshakeDone(self._context, self), sock, ssl=self._tls,
                ssl_handshake_timeout=self._context.header_timeout,
            )  # fmt: skip
        except OSError as exc:  # a bad ClientHello, a reset, the handshake timeout
            log.debug("viewer TLS handshake failed: %s", exc)
        finally:
            self.release()

    def release(self) -> None:
        """Leave the cap's count: the connection is a viewer's now, or closed."""
        self._context.connections.discard(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """The plain transport closed after giving its socket away: nothing to do."""

    def timed_out(self) -> None:
        """The handshake is not done within the header bound: cancelled, the socket closed."""
        if self._task is not None:
            self._task.cancel()

    def shutdown(self) -> None:
        self.timed_out()  # the server stops: nothing is under way on it


class _HandshakeDone(ViewerProtocol):
    """The ``ViewerProtocol`` of an HTTPS connection: it takes its ``TlsAccept``'s place in
    the cap, and its header bound, counted from the TCP accept."""

    def __init__(self, context: ViewerContext, accepted: TlsAccept) -> None:
        super().__init__(context, "https")
        self._accepted = accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._accepted.release()
        super().connection_made(transport)
        self.deadline = min(self.deadline, self._accepted.deadline)
