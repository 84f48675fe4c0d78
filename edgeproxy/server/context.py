"""What every viewer connection of one server shares (``ViewerContext``): the edge, the
bounds, a coarse clock, the Date line, and the set of open connections with the cap on their
number.

Timing is read from ``ViewerContext.now``, a clock the server advances on its tick: each
connection keeps one ``deadline`` (0: none) that the server's sweep enforces: the request
head must be complete within ``header_timeout``, an idle keep-alive connection, a stalled
body or a viewer that reads nothing closes after ``idle_timeout``.
"""

from __future__ import annotations

import logging
from typing import Protocol

from edgeproxy.errors import EdgeError
from edgeproxy.exchange import new_request_id
from edgeproxy.limits import TUNNEL_IDLE_TIMEOUT_S
from edgeproxy.messages import EdgeResponse
from edgeproxy.pipeline import Edge
from edgeproxy.server.head import DateHeader
from edgeproxy.viewer.error_page import error_response

log = logging.getLogger("edgeproxy.server")

_BURST_GAP_S = 10.0  # a refusal this long after the last one starts a new burst (and warning)


class Connection(Protocol):
    """What the cap and the sweep know of a connection: a ``ViewerProtocol``, or an HTTPS
    connection still in its TLS handshake (``server.TlsAccept``)."""

    deadline: float  # loop time it is closed at; 0: none

    def timed_out(self) -> None: ...

    def shutdown(self) -> None: ...


class ViewerContext:
    """What every connection of one server shares: the edge, the bounds, a coarse clock,
    the Date line, and the set of open connections (with the cap on their number)."""

    def __init__(
        self, edge: Edge, *, header_timeout: float, idle_timeout: float, max_connections: int
    ) -> None:
        self.edge = edge
        self.header_timeout = header_timeout
        self.idle_timeout = idle_timeout
        self.tunnel_idle_timeout = TUNNEL_IDLE_TIMEOUT_S  # a WebSocket's origin silent this long
        self.max_connections = max_connections
        self.date = DateHeader()
        self.now = 0.0  # loop time, advanced by the server's tick
        self.connections: set[Connection] = set()
        self.refused = 0  # connections refused at the cap, in all
        self._last_refusal = -_BURST_GAP_S

    def admit(self, connection: Connection) -> bool:
        """Count ``connection`` in, unless the cap is reached: then one warning per burst
        (refusals closer than ``_BURST_GAP_S`` to each other are one burst)."""
        if len(self.connections) >= self.max_connections:
            if self.now - self._last_refusal >= _BURST_GAP_S:
                log.warning(
                    "viewer connection cap of %d reached: new connections are closed at once"
                    " (%d refused so far)",
                    self.max_connections,
                    self.refused,
                )
            self._last_refusal = self.now
            self.refused += 1
            return False
        self.connections.add(connection)
        return True

    def sweep(self) -> None:
        """Close every connection whose deadline has passed."""
        now = self.now
        for connection in [c for c in self.connections if 0.0 < c.deadline <= now]:
            connection.timed_out()

    def error(self, error: EdgeError) -> EdgeResponse:
        identity = self.edge.identity
        return error_response(error, new_request_id(), via=identity.via, pop=identity.pop)
