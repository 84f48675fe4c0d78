"""A viewer's request body as it arrives on its connection: handed to the pipeline as a
stream, read once, never held whole.

Theory of operation
-------------------
The viewer protocol hands a request with a body to the pipeline as soon as its head is
complete, with a ``ViewerBody`` as ``EdgeRequest.body_stream``; the parser then ``feed``s the
body's bytes in and ``end``s it (or ``fail``s it: malformed, cut short, the viewer gone). The
pipeline reads it at most once, in this order: ``peek(n)`` for the copy an include_body
handler sees (CloudFront's truncated copy, reference 4.5), then iteration for the origin,
which gets every byte from the first. At most ``HIGH_WATER`` bytes (or what a peek asked
for) wait in memory; above that the connection stops reading until the origin takes them.

The first read (a peek or the first chunk) is the moment the request has passed every check
that could refuse it (limits, method, protocol, geo, a viewer-request generated response): a
viewer that sent ``Expect: 100-continue`` gets its ``100 Continue`` then, and only then.

Once its answer is ready the connection calls ``discard``: what is held is dropped, later
bytes are ignored, and a reader still waiting stops. Nothing of the body is kept after.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from edgeproxy.errors import BadRequest, EdgeError

HIGH_WATER = 256 * 1024  # bytes held before the connection stops reading


class BodyConnection(Protocol):
    """What a body needs of its connection."""

    def hold_body(self, hold: bool) -> None:
        """Stop (True) or resume (False) reading for the body's sake."""

    def send_continue(self) -> None:
        """Write ``100 Continue``."""


class ViewerBody:
    """One request body on its way from the viewer. ``length`` is its Content-Length (None
    when chunked); ``received`` counts the bytes that arrived."""

    __slots__ = (
        "length",
        "received",
        "_connection",
        "_expect_continue",
        "_chunks",
        "_held",
        "_want",
        "_holding",
        "_ended",
        "_started",
        "_error",
        "_discarded",
        "_waiter",
    )

    def __init__(
        self, connection: BodyConnection, length: int | None, *, expect_continue: bool
    ) -> None:
        self.length = length
        self.received = 0
        self._connection: BodyConnection | None = connection
        self._expect_continue = expect_continue
        self._chunks: deque[bytes] = deque()
        self._held = 0
        self._want = 0  # a peek waiting for this many bytes
        self._holding = False
        self._ended = False
        self._started = False
        self._error: EdgeError | None = None
        self._discarded = False
        self._waiter: asyncio.Future[None] | None = None

    # -- the connection's side -------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        if self._error is not None:
            return
        self.received += len(data)
        self._chunks.append(data)
        self._held += len(data)
        self._flow()
        self._wake()

    def end(self) -> None:
        """Every byte arrived."""
        self._ended = True
        self._flow()
        self._wake()
        self._connection = None  # nothing more to hold or to answer for

    def fail(self, error: EdgeError) -> None:
        """The body cannot be had whole: a reader gets ``error`` instead of the rest."""
        if self._ended or self._error is not None:
            return
        self._error = error
        self._drop()

    def discard(self) -> None:
        """The answer is ready: drop what is held and whatever still comes."""
        if self._error is None:
            self._discarded = True
            self._error = BadRequest("the answer was sent before the body was read")
        self._drop()

    @property
    def ended(self) -> bool:
        """Whether the whole body arrived (read by the pipeline or not)."""
        return self._ended

    @property
    def started(self) -> bool:
        """Whether its chunks began to be read out: it cannot be sent again."""
        return self._started

    @property
    def error(self) -> EdgeError | None:
        """Why the body cannot be had whole, if it cannot (None once it ended)."""
        return None if self._discarded else self._error

    # -- the pipeline's side ---------------------------------------------------------------

    async def peek(self, size: int) -> bytes:
        """The body's first ``size`` bytes (fewer when it is shorter), left to be read."""
        assert not self._started, "a body is peeked before it is read"
        self._demand()
        self._want = size
        try:
            while self._held < size and not self._ended:
                self._raise_error()
                self._flow()
                await self._wait()
        finally:
            self._want = 0
        self._raise_error()
        if len(self._chunks) > 1:
            self._chunks = deque((b"".join(self._chunks),))
        self._flow()
        return self._chunks[0][:size] if self._chunks else b""

    def __aiter__(self) -> ViewerBody:
        return self

    async def __anext__(self) -> bytes:
        self._demand()
        self._started = True
        while not self._chunks:
            self._raise_error()
            if self._ended:
                raise StopAsyncIteration
            await self._wait()
        data = self._chunks.popleft()
        self._held -= len(data)
        self._flow()
        return data

    # -- inside ----------------------------------------------------------------------------

    def _demand(self) -> None:
        """The body is wanted: the request passed every check that could refuse it."""
        if self._expect_continue:
            self._expect_continue = False
            if self._connection is not None and not self._ended:
                self._connection.send_continue()

    def _flow(self) -> None:
        hold = not self._ended and self._held >= max(HIGH_WATER, self._want)
        if hold != self._holding and self._connection is not None:
            self._holding = hold
            self._connection.hold_body(hold)

    def _drop(self) -> None:
        self._chunks.clear()
        self._held = 0
        self._flow()
        self._connection = None
        self._wake()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    async def _wait(self) -> None:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
