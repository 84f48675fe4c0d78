"""The viewer side of HTTP/1.1: one ``asyncio.Protocol`` per connection on the llhttp parser
(httptools), reading requests and handing each to the connection's ``Answers``.

Theory of operation
-------------------
Bytes go to the parser as they arrive; its callbacks collect one request at a time (request
line, headers as on the wire) into an ``EdgeRequest``, handed over as soon as its head is
complete; ``server/answering.py`` answers them in order. The callbacks and the hand-over are
the hit path: they live on this one object, with no other object in between.

A request with a body streams it in behind it as ``EdgeRequest.body_stream``
(``server/body.py``). A body not read to its end when its answer is ready is dropped and the
connection closes after the answer, as after any refusal: lingering (``server/reading.py``).
Trailers of a chunked body are dropped, never merged into the headers; the head's framing
is checked by ``server/framing.py`` (Transfer-Encoding, Host).

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

Each connection keeps one ``deadline`` on its ``ViewerContext``'s clock (``server/context.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

import httptools

from edgeproxy.errors import BadRequest, EdgeError, MethodNotAllowed, RequestTooLarge
from edgeproxy.limits import MAX_REQUEST_HEAD, MAX_URL_LENGTH
from edgeproxy.messages import BodyStream, EdgeRequest, EdgeResponse
from edgeproxy.origin.tunnel import Tunnel
from edgeproxy.server.answering import Answers, Job
from edgeproxy.server.body import ViewerBody
from edgeproxy.server.context import ViewerContext
from edgeproxy.server.facts import origin_form, tls_facts
from edgeproxy.server.framing import request_framing
from edgeproxy.server.reading import Reading
from edgeproxy.server.websocket import is_websocket, plain_head, switch_head
from edgeproxy.server.writer import ResponseWriter

log = logging.getLogger("edgeproxy.server")

_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_VERSIONS = frozenset({"1.1", "1.0"})


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; the error to answer is kept aside."""


class ViewerProtocol(asyncio.Protocol):
    """One viewer connection: parse, hand over, keep alive or close."""

    def __init__(self, context: ViewerContext, scheme: str) -> None:
        self._context = context
        self._scheme = scheme
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._out = out = ResponseWriter(context.date)
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
        self._stopped = False  # no more requests are read
        self._reading = reading = Reading(out, context, self)
        self._answers = answers = Answers(
            context, out, reading, idle=self._idle, close=reading.close,
            body_answered=self._body_answered, relay=self._relay,
        )  # fmt: skip
        # the hit path calls it as its own method: no lookup through ``_answers`` per request
        self._dispatch: Callable[[Job], None] = answers.dispatch
        self.deadline = 0.0

    # -- connection events ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._answers.loop = asyncio.get_running_loop()
        self._out.transport = self._reading.transport = self._transport
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
        self._answers.stop()

    def eof_received(self) -> bool:
        """The viewer sent all it will send: answer what is queued, then close."""
        self._stopped = True
        self._fail_body("the viewer ended its input before the body ended")
        if self._tunnel is not None:
            self._tunnel.viewer_eof()
        if not self._answers.busy or self._transport is None:
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
        if self._answers.busy or self._started:
            self._out.abort()
        else:
            self._out.close()

    def shutdown(self) -> None:
        """The server stops: close now when idle, else after the answer under way."""
        self._stopped = True
        if not self._answers.busy:
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
        self._reading.awaiting_tunnel = True  # nothing is read until the origin's answer
        self._reading.sync()
        self._dispatch((request, False))  # any answer but a 101 closes the connection
        return b""

    def _refuse(self, error: EdgeError) -> None:
        """Answer ``error`` after the requests before it, read nothing more, then close. In
        the middle of a body, its request is already handed over: the body fails with
        ``error``, which that request answers."""
        self._stopped = True
        reading = self._reading
        reading.refused = reading.still_sending = True
        reading.sync()
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
        body = ViewerBody(self._reading, length, expect_continue=expect)
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

    # -- the body in progress (its flow: ``server/reading.py``) ------------------------------

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
            self._stopped = self._reading.still_sending = True
            if self._body is body:
                self._body = None
        return ended

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

    # -- after the answers ------------------------------------------------------------------

    async def _relay(self, response: EdgeResponse, tunnel: Tunnel) -> None:
        """The origin's 101 to a WebSocket handshake: relay it, then bytes both ways until
        either side closes (the connection keeps counting against the cap meanwhile)."""
        assert self._transport is not None  # set when the connection was made
        self._tunnel = tunnel
        self._reading.tunnel()
        early, self._early = self._early, b""
        idle = self._context.tunnel_idle_timeout
        try:
            await tunnel.relay(self._out, self._transport, switch_head(response), early, idle)
        finally:
            self._out.close()

    def _idle(self) -> None:
        """Every queued request answered: close, or wait for the next request."""
        if self._stopped:
            self._reading.close()
            return
        if not self._started:
            self.deadline = self._context.now + self._context.idle_timeout
