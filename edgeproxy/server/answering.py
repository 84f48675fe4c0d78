"""Answering one viewer connection's requests, in the order they came.

A finished request (or a refusal, as the ``EdgeError`` to answer) is a ``Job``. It is
answered at once when the connection is free, otherwise queued behind the others: pipelined
requests are answered in order. A fresh cache hit is answered on the spot, without a task
(``Edge.hit``); anything else, or a connection whose writes are paused, runs ``_serve`` for
the job and then for every job queued behind it, in one task per busy spell of the
connection. Past ``MAX_PIPELINED`` queued jobs the connection stops reading until half of
them are answered.

The connection calls ``dispatch`` through a bound method it keeps, and ``Answers`` calls the
connection back through the bound methods it was given: a hit costs no attribute lookup
through another object (the hit path's speed, tests/test_fast_hits.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from edgeproxy.errors import EdgeError, InternalError
from edgeproxy.limits import MAX_PIPELINED
from edgeproxy.messages import BodyStream, EdgeRequest, EdgeResponse
from edgeproxy.origin.tunnel import Tunnel
from edgeproxy.server.context import ViewerContext
from edgeproxy.server.reading import Reading
from edgeproxy.server.writer import ResponseWriter

log = logging.getLogger("edgeproxy.server")

Job = tuple[EdgeRequest | EdgeError, bool]  # what to answer, and whether to keep the connection


class Answers:
    """The answers of one connection: the queue of jobs, and the task answering them.

    ``idle`` is called when every job is answered and the connection stays open, ``close``
    when it closes after the last answer; ``body_answered`` when the answer to a request with
    a body is ready (False: the body had not all arrived, the connection closes after the
    answer); ``relay`` carries a WebSocket after the origin's 101."""

    __slots__ = (
        "busy",
        "loop",
        "_pending",
        "_task",
        "_context",
        "_out",
        "_reading",
        "_idle",
        "_close",
        "_body_answered",
        "_relay",
    )

    def __init__(
        self,
        context: ViewerContext,
        out: ResponseWriter,
        reading: Reading,
        *,
        idle: Callable[[], None],
        close: Callable[[], None],
        body_answered: Callable[[BodyStream], bool],
        relay: Callable[[EdgeResponse, Tunnel], Awaitable[None]],
    ) -> None:
        self.busy = False  # a task is answering
        self.loop: asyncio.AbstractEventLoop | None = None  # set when the connection is made
        self._pending: deque[Job] = deque()
        self._task: asyncio.Task[None] | None = None
        self._context = context
        self._out = out
        self._reading = reading
        self._idle = idle
        self._close = close
        self._body_answered = body_answered
        self._relay = relay

    def dispatch(self, job: Job) -> None:
        """Answer ``job`` now if the connection is free, else queue it behind the others."""
        if self.busy:
            self._pending.append(job)
            if len(self._pending) >= MAX_PIPELINED:
                self._reading.queue_full = True
                self._reading.sync()
            return
        if self._answered_at_once(job):
            return
        self.busy = True
        assert self.loop is not None  # set when the connection was made
        self._task = self.loop.create_task(self._serve(job))

    def stop(self) -> None:
        """The connection is lost: nothing queued is answered, an answer under way ends (its
        stream is closed on the way out)."""
        self._pending.clear()
        if self._task is not None:
            self._task.cancel()

    def _answered_at_once(self, job: Job) -> bool:
        """A fresh cache hit is answered here, without a task (``Edge.hit``); anything else,
        or a connection whose writes are paused, goes through ``_serve``."""
        item, keep_alive = job
        out = self._out
        if isinstance(item, EdgeError) or out.paused:
            return False
        try:
            response = self._context.edge.hit(item)
        except Exception:  # the full flow will answer it, and log what went wrong
            log.exception("edge.hit failed for %s %s", item.method, item.uri)
            return False
        if response is None:
            return False
        keep_alive = out.send(
            response, item.method == "HEAD", keep_alive, item.http_version == "1.0"
        )
        if not keep_alive:
            self._close()
            return True
        self._idle()
        return True

    async def _serve(self, job: Job) -> None:
        """Answer ``job`` and every job queued behind it, in order. One coroutine, no
        nested ones: this runs for every request, and each level of await costs."""
        out = self._out
        context = self._context
        try:
            while True:
                item, keep_alive = job
                if isinstance(item, EdgeError):
                    response, head_only, http10 = context.error(item), False, False
                else:
                    try:
                        response = await context.edge.handle(item)
                    except Exception as exc:  # the pipeline answers everything; a defect
                        log.exception("edge.handle failed for %s %s", item.method, item.uri)
                        response = context.error(InternalError(repr(exc)))
                    head_only, http10 = item.method == "HEAD", item.http_version == "1.0"
                    if item.body_stream is not None:
                        keep_alive = self._body_answered(item.body_stream) and keep_alive
                if isinstance(response.tunnel, Tunnel):  # the one kind this server makes
                    await self._relay(response, response.tunnel)
                    return
                if response.stream is None:
                    keep_alive = out.send(response, head_only, keep_alive, http10)
                else:
                    keep_alive = await out.send_stream(response, head_only, keep_alive, http10)
                if not keep_alive:
                    self._close()
                    return
                if out.paused:
                    await out.drain()
                if not self._pending:
                    break
                job = self._pending.popleft()
                reading = self._reading
                if reading.queue_full and len(self._pending) < MAX_PIPELINED // 2:
                    reading.queue_full = False
                    reading.sync()
        finally:
            self.busy = False
            self._task = None
        self._idle()
