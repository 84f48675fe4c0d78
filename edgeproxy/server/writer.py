"""Writing answers on one viewer connection: a head and a small body in one write, a stream
chunk by chunk as it arrives, pausing while the transport's buffer is full (its
``pause_writing``/``resume_writing`` flow control).

A head ``encode_head`` refuses as unsafe (a CR, LF or NUL that would split the response,
...) is a defect upstream: it is logged, the viewer gets CloudFront's 502 page in its place
(same request id, Via and PoP) and the connection closes; its bytes are never written.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

from edgeproxy.errors import InternalError
from edgeproxy.exchange import new_request_id
from edgeproxy.messages import EdgeResponse, header_value
from edgeproxy.server.head import (
    LAST_CHUNK,
    DateHeader,
    Framing,
    Head,
    UnsafeHead,
    chunk,
    encode_head,
)
from edgeproxy.viewer.error_page import error_response

log = logging.getLogger("edgeproxy.server")

_JOIN_LIMIT = 65536  # a body up to this size is copied behind its head: one write, one syscall
_PRINTABLE = re.compile(r"[\x20-\x7e]+")


class ResponseWriter:
    """The output side of a connection. ``closed`` once it is closed or lost: nothing more
    is written then."""

    __slots__ = ("transport", "closed", "paused", "peer", "_date", "_waiter")

    def __init__(self, date: DateHeader) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused = False
        self.peer = ""
        self._date = date
        self._waiter: asyncio.Future[None] | None = None

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        """Close once what was written is sent."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Close now, dropping what is not sent yet."""
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport takes more (a cancelled task stops waiting too)."""
        if self.paused and not self.closed:
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            await waiter

    def send(self, response: EdgeResponse, head_only: bool, keep_alive: bool, http10: bool) -> bool:
        """Write ``response`` (no stream); whether the connection may carry another request."""
        try:
            head = encode_head(
                response, self._date, head_only=head_only, keep_alive=keep_alive, http10=http10
            )
        except UnsafeHead as exc:  # the 502 page instead (made safe: never refused in turn)
            return self.send(self._refused(response, exc), head_only, False, http10)
        body = response.body
        if head.framing is Framing.CHUNKED:  # a held body whose origin sent it chunked
            self.write(head.data + (chunk(body) if body else b"") + LAST_CHUNK)
        elif head.framing is Framing.NONE or not body:
            self.write(head.data)
        elif len(body) <= _JOIN_LIMIT:
            self.write(head.data + body)
        else:
            self.write(head.data)
            self.write(body)
        return head.keep_alive

    async def send_stream(
        self, response: EdgeResponse, head_only: bool, keep_alive: bool, http10: bool
    ) -> bool:
        """Write ``response`` and its stream; the stream is closed whatever happens."""
        assert response.stream is not None
        try:
            head = encode_head(
                response, self._date, head_only=head_only, keep_alive=keep_alive, http10=http10
            )
        except UnsafeHead as exc:
            await aclose(response.stream)
            return self.send(self._refused(response, exc), head_only, False, http10)
        if head.framing is Framing.NONE:
            self.write(head.data)
            await aclose(response.stream)
            return head.keep_alive
        return await self._send_stream(head, response.stream)

    def _refused(self, response: EdgeResponse, problem: UnsafeHead) -> EdgeResponse:
        """CloudFront's 502 page for ``response``, whose head is unsafe; logged."""
        error = _unsafe_head_error(response)
        request_id = header_value(error.headers, "X-Amz-Cf-Id")
        log.error(
            "%s viewer %s: unsafe response head (%s): sent CloudFront's 502 instead",
            request_id,
            self.peer,
            problem,
        )
        return error

    async def _send_stream(self, head: Head, stream: AsyncIterator[bytes]) -> bool:
        """Chunks as they come. A stream that fails ends the connection without the last
        chunk (or short of its length), so the viewer can tell the body is incomplete."""
        self.write(head.data)
        chunked = head.framing is Framing.CHUNKED
        sent = 0
        try:
            async for data in stream:
                if not data:
                    continue
                sent += len(data)
                if head.framing is Framing.LENGTH and sent > head.length:
                    log.warning("viewer %s: stream longer than its Content-Length", self.peer)
                    return False
                self.write(chunk(data) if chunked else data)
                if self.closed:
                    return False
                if self.paused:
                    await self.drain()
        except Exception as exc:
            log.warning("viewer %s: response stream failed: %s", self.peer, exc)
            return False
        finally:
            await aclose(stream)
        if chunked:
            self.write(LAST_CHUNK)
        return head.keep_alive and (head.framing is not Framing.LENGTH or sent == head.length)


def _unsafe_head_error(response: EdgeResponse) -> EdgeResponse:
    """CloudFront's 502 page for an answer whose head was unsafe, with the answer's request
    id, Via and PoP when they are plain text (they are the edge's own; else fresh ones)."""
    request_id, via, pop = (
        value if value is not None and _PRINTABLE.fullmatch(value) else None
        for value in (
            header_value(response.headers, name) for name in ("X-Amz-Cf-Id", "Via", "X-Amz-Cf-Pop")
        )
    )
    error = InternalError("unsafe response head")
    return error_response(error, request_id or new_request_id(), via=via or "", pop=pop or "")


async def aclose(stream: AsyncIterator[bytes]) -> None:
    """Close a response stream (which releases its origin connection)."""
    close = getattr(stream, "aclose", None)  # an async generator has it; a plain iterator not
    if close is not None:
        try:
            await close()
        except Exception as exc:  # closing must not fail an answer already sent
            log.debug("closing a response stream failed: %s", exc)
