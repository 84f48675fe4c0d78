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

The window is exact: it opens when a final (non-1xx) answer's body ends and closes when aiohttp
prepares the connection for the next request (``set_response_params``), before that request
is written, so no byte an origin sends in answer to a request falls into it.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http import RawResponseMessage
from aiohttp.streams import StreamReader


class OriginConnection(ResponseHandler):
    """aiohttp's protocol for one origin connection, closed on any byte nobody asked for."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._answered = False  # the last final answer is complete; no request since

    def set_response_params(self, **params: Any) -> None:
        # A request is about to go out on this connection: bytes are expected again.
        self._answered = False
        super().set_response_params(**params)

    def feed_data(self, data: tuple[RawResponseMessage, StreamReader], size: int = 0) -> None:
        super().feed_data(data, size)
        message, payload = data
        if message.code >= 200:  # 1xx answers come before the final one
            payload.on_eof(self._answer_complete)

    def _answer_complete(self) -> None:
        self._answered = True

    def data_received(self, data: bytes) -> None:
        if data and self._answered:
            self._drop_surplus()
            return
        super().data_received(data)

    def _drop_surplus(self) -> None:
        self.force_close()
        if self.transport is not None:
            self.transport.close()


class OriginConnector(aiohttp.TCPConnector):
    """aiohttp's TCP connector whose connections are ``OriginConnection``s."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # aiohttp has no public switch for the protocol class; its connectors build every
        # connection (plain and TLS) with this factory.
        self._factory = functools.partial(_new_connection, loop=self._loop)


def _new_connection(loop: asyncio.AbstractEventLoop) -> ResponseHandler:
    return OriginConnection(loop)
