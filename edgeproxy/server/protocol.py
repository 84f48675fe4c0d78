"""The viewer side of HTTP/1.1: one ``asyncio.Protocol`` per connection on the llhttp parser
(httptools), handing each request to ``Edge.handle`` and writing its answer.

Theory of operation
-------------------
Bytes go to the parser as they arrive; its callbacks collect one request at a time (request
line, headers as on the wire) into an ``EdgeRequest``. A finished request is answered at
once when the connection is free, otherwise queued: pipelined requests are answered in the
order they came. Answering runs ``_serve`` for the request and then for every request queued
behind it, in one task per busy spell of the connection.

A request with a body is handed over as soon as its head is complete, its body streaming in
behind it as ``EdgeRequest.body_stream`` (``http1_body``): it is never held whole, reading
pauses while the pipeline does not take it, and ``100 Continue`` goes out only when the
pipeline first reads it, after every check that could refuse the request. A body not read
to its end when its answer is ready is dropped and the connection closes after the answer;
so it does after any refusal, half-closed first and read (and dropped) for up to
``LINGER_S``, so that the viewer still sending gets the answer rather than a reset
(RFC 9112 9.6). Trailers of a chunked body are dropped, never merged into the headers;
the head's framing is checked by ``http1_framing`` (Transfer-Encoding, Host).

Input the edge refuses (limits and malformed requests, reference 1 and 5) is queued as the
``EdgeError`` to answer, behind the requests before it; nothing after it is read and the
connection closes once it is answered. Nothing refused here reaches the pipeline. Heads
over 20,480 bytes and URLs over 8,192 get 413; what llhttp rejects (Content-Length with
Transfer-Encoding, repeated Content-Length, obsolete line folding, bad names, bytes or line
ends, unknown methods and versions) gets 400. CONNECT gets 403 with CloudFront's "method not
allowed" page: CloudFront answers so any method outside a behavior's allowed_methods, and
no behavior can allow CONNECT. An absolute-form target (``GET http://host/p``) is served
as its path and query alone; neither it nor the Host header ever selects an origin.
llhttp stops at the head of an Upgrade request: ``server/websocket.py`` says what follows (a
WebSocket handshake is dispatched, the connection becomes its tunnel after a 101; any other
upgrade is parsed again without it, so its body is framed like any request's).

Timing is read from ``ViewerContext.now``, a clock the server advances on its tick: each
connection keeps one ``deadline`` (0: none) that the server's sweep enforces: the request
head must be complete within ``header_timeout``, an idle keep-alive connection, a stalled
body or a viewer that reads nothing closes after ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol, cast

import httptools

from edgeproxy.errors import BadRequest, EdgeError, InternalError, MethodNotAllowed, RequestTooLarge
from edgeproxy.exchange import new_request_id
from edgeproxy.limits import (
    LINGER_S,
    MAX_PIPELINED,
    MAX_REQUEST_HEAD,
    MAX_URL_LENGTH,
    TUNNEL_IDLE_TIMEOUT_S,
)
from edgeproxy.messages import BodyStream, EdgeRequest, EdgeResponse
from edgeproxy.origin.tunnel import Tunnel
from edgeproxy.pipeline import Edge
from edgeproxy.server.body import ViewerBody
from edgeproxy.server.facts import origin_form, tls_facts
from edgeproxy.server.framing import request_framing
from edgeproxy.server.head import CONTINUE, DateHeader
from edgeproxy.server.websocket import is_websocket, plain_head, switch_head
from edgeproxy.server.writer import ResponseWriter
from edgeproxy.viewer.error_page import error_response

log = logging.getLogger("edgeproxy.server")

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_VERSIONS = frozenset({"1.1", "1.0"})
_BURST_GAP_S = 10.0  # a refusal this long after the last one starts a new burst (and warning)

Job = tuple[EdgeRequest | EdgeError, bool]  # what to answer, and whether to keep the connection


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


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the error to answer is kept aside."""


class ViewerProtocol(asyncio.Protocol):
    """One viewer connection: parse, queue, answer in order, keep alive or close."""

    def __init__(self, context: ViewerContext, scheme: str) -> None:
        self._context = context
        self._scheme = scheme
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out = ResponseWriter(context.date)
        self._client_ip = ""
        self._client_port = 0
        self._tls_first = self._tls_later = ""
        self._requests = 0
        # the request being parsed
        self._url = b""
        self._headers: list[tuple[str, str]] = []
        self._body: ViewerBody | None = None  # its body, while it arrives
        self._head_size = 0  # bytes of the head seen by the callbacks
        self._head_bytes = 0  # bytes received while a head was incomplete
        self._in_head = True  # False from headers complete to message complete
        self._started = False  # a request has begun and is not complete
        self._expect_continue = False
        self._refusal: EdgeError | None = None
        self._upgrade: tuple[bytes, str] | None = None  # an Upgrade head: method, version
        self._early = b""  # bytes behind a WebSocket handshake, for its tunnel
        self._tunnel: Tunnel | None = None  # after a 101: the connection is the origin's
        self._awaiting_tunnel = False  # a WebSocket handshake waits for the origin's answer
        # answering
        self._busy = False
        self._pending: deque[Job] = deque()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False  # no more requests are read
        self._refused = False  # input refused: nothing more is read
        self._linger = False  # the viewer may still be sending when the connection closes
        self._lingering = False
        # reading: paused while any of these holds (``_sync_reading``)
        self._queue_full = False
        self._body_held = False
        self._paused = False
        self.deadline = 0.0

    # -- connection events ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._loop = asyncio.get_running_loop()
        self._out.transport = self._transport
        context = self._context
        if not context.admit(self):
            self._stopped = True
            self._out.abort()
            return
        peer = transport.get_extra_info("peername")
        if peer:
            self._client_ip, self._client_port = peer[0], peer[1]
            self._out.peer = self._client_ip
        self._tls_first, self._tls_later = tls_facts(transport)
        self.deadline = context.now + context.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self._stopped = self._out.closed = True
        self._context.connections.discard(self)
        self._fail_body("the viewer closed the connection before the body ended")
        self._pending.clear()
        if self._task is not None:
            self._task.cancel()  # an answer under way: its stream is closed on the way out

    def eof_received(self) -> bool:
        """The viewer sent all it will send: answer what is queued, then close."""
        self._stopped = True
        self._fail_body("the viewer ended its input before the body ended")
        if self._tunnel is not None:
            self._tunnel.viewer_eof()
        if not self._busy or self._transport is None:
            return False  # the transport closes itself
        return self._transport.get_extra_info("sslcontext") is None  # TLS cannot half-close

    def pause_writing(self) -> None:
        self._out.pause()
        self.deadline = self._context.now + self._context.idle_timeout  # a viewer not reading

    def resume_writing(self) -> None:
        self._out.resume()
        self.deadline = 0.0

    def timed_out(self) -> None:
        """The deadline passed: a head too slow, an idle connection, a stalled viewer."""
        log.debug("viewer %s:%s timed out", self._client_ip, self._client_port)
        self._stopped = True
        if self._busy or self._started:
            self._out.abort()
        else:
            self._out.close()

    def shutdown(self) -> None:
        """The server stops: close now when idle, else after the answer under way."""
        self._stopped = True
        if not self._busy:
            self._out.close()

    # -- input ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._tunnel is not None:
            self._tunnel.feed(data)
            return
        if self._stopped:
            return
        if self._in_head:
            self._head_bytes += len(data)
        else:
            self.deadline = self._context.now + self._context.idle_timeout
        try:
            while data:
                data = self._feed(data)
        except httptools.HttpParserError as exc:
            if not self._stopped:
                self._refuse(self._refusal or BadRequest(f"malformed request: {exc}"))
            return
        if self._in_head and self._head_bytes > MAX_REQUEST_HEAD and not self._stopped:
            self._refuse(RequestTooLarge("request line and headers over 20,480 bytes"))

    def _feed(self, data: bytes) -> bytes:
        """Parse ``data``; what is left to parse after an Upgrade request's head, else b""."""
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            return self._after_upgrade(data[upgrade.args[0] :])
        return b""

    def _after_upgrade(self, rest: bytes) -> bytes:
        """llhttp stopped at an Upgrade request's head (CONNECT is refused already). A
        WebSocket handshake is dispatched, nothing after it is parsed; any other upgrade's
        head is parsed again without it, with the bytes that followed: its body is framed
        by Content-Length or chunks, never read as a next request. (llhttp reads no body
        of an Upgrade request: tests/test_upgrade.py holds it to that.)"""
        upgrade, self._upgrade = self._upgrade, None
        self._parser = httptools.HttpRequestParser(self)
        if self._stopped or upgrade is None:
            return b""
        method, version = upgrade
        if not is_websocket(method, version, self._headers):
            return plain_head(method, self._url, version, self._headers) + rest
        request = self._request("GET", version, None)
        if request is None:
            self._refuse(BadRequest("request target is not a path"))
            return b""
        request.websocket = True
        self._stopped, self._early = True, rest  # what follows is the tunnel's, if any
        self._awaiting_tunnel = True  # nothing is read until the origin's answer
        self._sync_reading()
        self._dispatch((request, False))  # any answer but a 101 closes the connection
        return b""

    def _refuse(self, error: EdgeError) -> None:
        """Answer ``error`` after the requests before it, read nothing more, then close. In
        the middle of a body, its request is already handed over: the body fails with
        ``error``, which that request answers."""
        self._stopped = self._refused = self._linger = True
        self._sync_reading()
        log.info("viewer %s refused: %s %s", self._client_ip, error.status, error.detail)
        body, self._body = self._body, None
        if body is not None:
            body.fail(error)
            return
        self._dispatch((error, False))

    def _reject(self, error: EdgeError) -> _Refused:
        self._refusal = error
        return _Refused(error.detail)

    # -- parser callbacks (httptools) --------------------------------------------------------

    def on_message_begin(self) -> None:
        self._started = True
        self._url = b""
        self._headers = []
        self._head_size = 0
        self._expect_continue = False
        self.deadline = self._context.now + self._context.header_timeout

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_URL_LENGTH:
            raise self._reject(RequestTooLarge("URL over 8,192 bytes"))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        if self._head_size > MAX_REQUEST_HEAD:
            raise self._reject(RequestTooLarge("request line and headers over 20,480 bytes"))
        if not self._in_head:
            return  # a trailer of a chunked body: counted, never a header, never forwarded
        if len(name) == 6 and name.lower() == b"expect":
            self._expect_continue = value.lower() == b"100-continue"
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        request_line = len(self._parser.get_method()) + len(self._url) + 12  # SP SP HTTP/1.1 CRLF
        if self._head_size + request_line + 2 > MAX_REQUEST_HEAD:
            raise self._reject(RequestTooLarge("request line and headers over 20,480 bytes"))
        self.deadline = self._context.now + self._context.idle_timeout  # the body's reads
        if self._parser.should_upgrade():
            return  # parsed again without the upgrade (or a WebSocket): its body then
        try:
            framing = request_framing(self._headers, self._parser.get_http_version())
        except EdgeError as error:
            raise self._reject(error) from None
        if framing.has_body and not self._stopped:
            self._start_body(None if framing.chunked else framing.length)

    def on_body(self, body: bytes) -> None:
        if self._body is not None:
            self._body.feed(body)

    def on_message_complete(self) -> None:
        self._in_head = True
        self._started = False
        body, self._body = self._body, None
        if body is not None:
            body.end()
        if self._stopped:
            return
        self.deadline = 0.0
        if body is None:
            self._ready(None)
        elif not self._parser.should_keep_alive():
            self._stopped = True  # "Connection: close": whatever follows is not read

    def _start_body(self, length: int | None) -> None:
        """A request with a body is handed over now; its body streams in behind it."""
        expect = self._expect_continue and self._parser.get_http_version() == "1.1"
        body = ViewerBody(self, length, expect_continue=expect)
        if expect:
            self.deadline = 0.0  # the viewer waits for our 100 Continue: no deadline
        if self._ready(body):
            self._body = body

    def _ready(self, body: ViewerBody | None) -> bool:
        """Hand over the request whose head is complete, with ``body`` streaming behind it
        (or none); False when it is refused instead."""
        parser = self._parser
        raw_method = parser.get_method()
        keep_alive = parser.should_keep_alive()
        if parser.should_upgrade() and raw_method != b"CONNECT":
            self._upgrade = (raw_method, parser.get_http_version())
            return False  # decided by _after_upgrade, with the bytes after the head
        if raw_method == b"CONNECT":
            self._refuse(MethodNotAllowed("CONNECT: the edge is not a proxy"))
            return False
        version = parser.get_http_version()
        if version not in _VERSIONS:
            self._refuse(BadRequest(f"HTTP/{version} is not served"))
            return False
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        request = self._request(method, version, body)
        if request is None:
            self._refuse(BadRequest("request target is not a path"))
            return False
        if not keep_alive and body is None:
            self._stopped = True  # "Connection: close": whatever follows is not read
        self._dispatch((request, keep_alive))
        return True

    # -- the body in progress (``http1_body.BodyConnection``) ---------------------------------

    def hold_body(self, hold: bool) -> None:
        """The body waits for the pipeline to take it (True), or takes more (False). While
        it waits, the edge is the one stalling: no deadline runs."""
        self._body_held = hold
        self._sync_reading()
        self.deadline = 0.0 if hold else self._context.now + self._context.idle_timeout

    def send_continue(self) -> None:
        """The pipeline reads the body: the viewer waiting for ``100 Continue`` may send it."""
        self._out.write(CONTINUE)
        self.deadline = self._context.now + self._context.idle_timeout

    def _fail_body(self, reason: str) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.fail(BadRequest(reason))

    def _body_answered(self, body: BodyStream) -> bool:
        """The answer to a request with a body is ready: the body is dropped (what the
        pipeline did not read is never kept). False when it had not all arrived: the
        connection then closes after the answer, lingering."""
        ended = body.ended
        body.discard()
        if not ended:
            self._stopped = self._linger = True
            if self._body is body:
                self._body = None
        return ended

    def _sync_reading(self) -> None:
        """Read from the viewer unless parsed requests queue up, a body waits for the
        pipeline, or the input was refused; a lingering close reads (and drops) again."""
        transport = self._transport
        if transport is None or self._out.closed:
            return
        held = self._queue_full or self._body_held or self._refused or self._awaiting_tunnel
        pause = not self._lingering and held
        if pause != self._paused:
            self._paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _request(self, method: str, version: str, body: ViewerBody | None) -> EdgeRequest | None:
        target = self._url
        if target[:1] != b"/" or b"#" in target:  # the usual origin-form needs no more
            found = origin_form(target)
            if found is None:
                return None
            target = found
        path, _, query = target.decode("latin-1").partition("?")
        self._requests += 1
        return EdgeRequest(
            method=method,
            uri=path,
            querystring=query,
            headers=self._headers,
            client_ip=self._client_ip,
            client_port=self._client_port,
            body_stream=body,
            scheme=self._scheme,
            http_version=version,
            tls=self._tls_first if self._requests == 1 else self._tls_later,
        )

    # -- answering -------------------------------------------------------------------------

    def _dispatch(self, job: Job) -> None:
        """Answer ``job`` now if the connection is free, else queue it behind the others."""
        if self._busy:
            self._pending.append(job)
            if len(self._pending) >= MAX_PIPELINED:
                self._queue_full = True
                self._sync_reading()
            return
        if self._answered_at_once(job):
            return
        self._busy = True
        assert self._loop is not None  # set when the connection was made
        self._task = self._loop.create_task(self._serve(job))

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
                if self._queue_full and len(self._pending) < MAX_PIPELINED // 2:
                    self._queue_full = False
                    self._sync_reading()
        finally:
            self._busy = False
            self._task = None
        self._idle()

    async def _relay(self, response: EdgeResponse, tunnel: Tunnel) -> None:
        """The origin's 101 to a WebSocket handshake: relay it, then bytes both ways until
        either side closes (the connection keeps counting against the cap meanwhile)."""
        assert self._transport is not None  # set when the connection was made
        self._tunnel = tunnel
        self._awaiting_tunnel = self._paused = False  # the tunnel reads from here on
        early, self._early = self._early, b""
        idle = self._context.tunnel_idle_timeout
        try:
            await tunnel.relay(self._out, self._transport, switch_head(response), early, idle)
        finally:
            self._out.close()

    def _idle(self) -> None:
        """Every queued request answered: close, or wait for the next request."""
        if self._stopped:
            self._close()
            return
        if not self._started:
            self.deadline = self._context.now + self._context.idle_timeout

    def _close(self) -> None:
        """Close once the answers are written. A viewer that may still be sending (refused
        input, a body not read to its end) is half-closed first and read, its bytes dropped,
        until it closes or ``LINGER_S`` pass: closing on unread input would reset the
        connection, and the viewer could lose the answer (RFC 9112 9.6). TLS cannot
        half-close: there the connection closes at once."""
        transport = self._transport
        if not self._linger or transport is None or self._out.closed:
            self._out.close()
            return
        if not transport.can_write_eof():
            self._out.close()
            return
        self._linger = False
        self._lingering = True
        transport.write_eof()
        self._sync_reading()
        self.deadline = self._context.now + LINGER_S
