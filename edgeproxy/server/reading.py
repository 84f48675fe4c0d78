"""When a viewer connection reads from its viewer, when the viewer may send a body, and how
the connection closes while the viewer may still be sending.

Reading pauses while any reason to hold holds: parsed requests queue up behind the one
being answered (``MAX_PIPELINED``), a body waits for the pipeline to take it, the input was
refused (nothing after a refusal is read), or a WebSocket handshake waits for the origin's
answer. A lingering close reads again. While a body waits for the pipeline, the edge is the
one stalling: no deadline runs. A viewer that sent ``Expect: 100-continue`` gets its
``100 Continue`` when the pipeline first reads the body (``server/body.py``).

Lingering close (RFC 9112 9.6): a viewer that may still be sending when the connection
closes (refused input, a body not read to its end) is half-closed first and read, its bytes
dropped, until it closes or ``LINGER_S`` pass: closing on unread input would reset the
connection, and the viewer could lose the answer. TLS cannot half-close: there the
connection closes at once.
"""

from __future__ import annotations

import asyncio

from edgeproxy.limits import LINGER_S
from edgeproxy.server.context import Connection, ViewerContext
from edgeproxy.server.head import CONTINUE
from edgeproxy.server.writer import ResponseWriter


class Reading:
    """The reasons to pause reading one connection, the flow of its body in progress
    (``body.BodyConnection``), and its close (lingering or not). The connection sets a reason
    and calls ``sync``; ``transport`` is set when it is made. The deadlines set here are the
    connection's."""

    __slots__ = (
        "transport",
        "queue_full",
        "body_held",
        "refused",
        "awaiting_tunnel",
        "still_sending",
        "lingering",
        "_out",
        "_context",
        "_connection",
        "_paused",
    )

    def __init__(self, out: ResponseWriter, context: ViewerContext, connection: Connection) -> None:
        self.transport: asyncio.Transport | None = None
        self.queue_full = False  # parsed requests wait for their turn
        self.body_held = False  # a body waits for the pipeline to take it
        self.refused = False  # input refused: nothing more is read
        self.awaiting_tunnel = False  # a WebSocket handshake waits for the origin's answer
        self.still_sending = False  # the viewer may still be sending when the connection closes
        self.lingering = False  # half-closed: read and dropped until the viewer closes
        self._out = out
        self._context = context
        self._connection = connection
        self._paused = False

    def sync(self) -> None:
        """Read from the viewer unless a reason to hold holds; a lingering close reads (and
        drops) again."""
        transport = self.transport
        if transport is None or self._out.closed:
            return
        held = self.queue_full or self.body_held or self.refused or self.awaiting_tunnel
        pause = not self.lingering and held
        if pause != self._paused:
            self._paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def hold_body(self, hold: bool) -> None:
        """The body waits for the pipeline to take it (True), or takes more (False)."""
        self.body_held = hold
        self.sync()
        context = self._context
        self._connection.deadline = 0.0 if hold else context.now + context.idle_timeout

    def send_continue(self) -> None:
        """The pipeline reads the body: the viewer waiting for ``100 Continue`` may send it."""
        self._out.write(CONTINUE)
        self._connection.deadline = self._context.now + self._context.idle_timeout

    def tunnel(self) -> None:
        """The origin switched protocols: the tunnel reads from here on (it resumes the
        transport itself)."""
        self.awaiting_tunnel = self._paused = False

    def close(self) -> None:
        """Close once the answers are written: lingering, for up to ``LINGER_S``, when the
        viewer may still be sending and the transport can half-close, else at once."""
        transport = self.transport
        if not self.still_sending or transport is None or self._out.closed:
            self._out.close()
            return
        if not transport.can_write_eof():
            self._out.close()
            return
        self.still_sending = False
        self.lingering = True
        transport.write_eof()
        self.sync()
        self._connection.deadline = self._context.now + LINGER_S
