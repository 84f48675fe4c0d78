"""One kept-alive origin connection: reused only while the origin sends exactly the answers
asked for.

aiohttp parses whatever arrives on a pooled connection and queues it; the next request sent
on that connection would read those bytes as its answer (a stale answer for another viewer,
or a hang on a half answer). An origin that sends anything between the end of an answer and
the next request, whether a second answer, body bytes past its Content-Length or noise, has
lost the framing of that connection, so the edge closes it as soon as such a byte arrives
(as nginx does with its upstream keep-alive connections). Bytes that come with the answer
itself are aiohttp's to judge: a complete extra answer left queued makes it close the
connection on release, unparseable ones fail that answer (502), and a partial one is dropped
with the parser the next request replaces.

How, with public API only (aiohttp has no public switch for its protocol class): a ``Watch``
stands between each origin socket and aiohttp's protocol, put there with asyncio's
``transport.set_protocol`` when ``OriginConnector.connect`` (the connector's documented entry
point) first hands the connection out. Each hand-out registers ``Connection.add_callback``,
which aiohttp calls as it releases the connection into the pool (the answer's body ended) or
closes it; the Watch is idle from then until ``connect`` hands it out again, in the same loop
step in which aiohttp prepares it for the next request, before that request is written. While
idle, the first byte closes the socket, and aiohttp never hands out a closed one.

A protocol that already is a ``Watch`` at a hand-out means a pooled connection, handed out
before: ``connect`` marks the attempt's ``Handout`` (``HANDOUT``, set by the origin client in
the attempt's own task, in which aiohttp awaits ``connect``), which the stale-connection retry
(``origin/retries.py`` ``is_stale``) reads. aiohttp's ``TraceConfig`` could say the same, but
any trace config makes aiohttp build a params object and await a signal at every step of
every request.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

import aiohttp
from aiohttp.connector import Connection


class Watch(asyncio.Protocol):
    """Passes a socket's events on to aiohttp's protocol; while ``idle`` (the last answer
    read to its end, no request since), the first byte closes the socket instead."""

    __slots__ = ("_inner", "_transport", "idle")

    def __init__(self, inner: asyncio.BaseProtocol, transport: asyncio.BaseTransport) -> None:
        assert isinstance(inner, asyncio.Protocol), "aiohttp's protocol takes data_received"
        self._inner = inner
        self._transport = transport
        self.idle = False

    def released(self) -> None:
        self.idle = True

    def data_received(self, data: bytes) -> None:
        if self.idle and data:
            self._transport.close()  # never handed out again: is_connected() is now False
            return
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class Handout:
    """What one attempt was handed: ``reused`` once that connection served an earlier request."""

    __slots__ = ("reused",)

    def __init__(self) -> None:
        self.reused = False


# The attempt now asking for a connection (None outside the origin client's requests).
HANDOUT: ContextVar[Handout | None] = ContextVar("origin_handout", default=None)


class OriginConnector(aiohttp.TCPConnector):
    """aiohttp's TCP connector whose connections are watched between answers (``Watch``)."""

    async def connect(self, req: aiohttp.ClientRequest, *args: Any, **kwargs: Any) -> Connection:
        connection = await super().connect(req, *args, **kwargs)
        if watch(connection):
            handout = HANDOUT.get()
            if handout is not None:
                handout.reused = True
        return connection


def watch(connection: Connection) -> bool:
    """Mark ``connection`` busy (a request is about to go out on it: bytes are expected again)
    and idle once aiohttp releases it; the first hand-out puts its ``Watch`` in place.
    True when it was in place already: a pooled connection, handed out before."""
    transport = connection.transport
    if transport is None:
        return False
    current = transport.get_protocol()
    if isinstance(current, Watch):
        found, reused = current, True
    else:
        found, reused = Watch(current, transport), False
        transport.set_protocol(found)
    found.idle = False
    connection.add_callback(found.released)
    return reused
