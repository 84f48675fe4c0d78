"""A WebSocket's tunnel to the origin: the handshake on a connection of its own, the 101 as
an ``EdgeResponse`` holding the ``Tunnel``, and the byte copy both ways once the viewer
protocol has relayed the 101 (``server/websocket.py`` says which requests are WebSockets).
Each direction waits for the other side's buffer to drain, so neither grows without bound;
the origin silent for the idle timeout closes it (``limits.TUNNEL_IDLE_TIMEOUT_S``)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Protocol

import httptools

from edgeproxy.errors import OriginConnectError, OriginError, OriginResponseError, OriginTimeout
from edgeproxy.messages import EdgeRequest, EdgeResponse, Headers, OriginTarget
from edgeproxy.origin.client import OriginClient
from edgeproxy.origin.headers import MAX_RESPONSE_HEAD, outgoing_headers, without_hop_by_hop

log = logging.getLogger("edgeproxy.server")

_CHUNK = 65536  # bytes read from the origin at a time
_HIGH_WATER = 256 * 1024  # origin-bound bytes buffered before the viewer's reading pauses


class ViewerWriter(Protocol):
    """What the tunnel needs of the viewer connection's writer (``server/writer.py``)."""

    closed: bool
    paused: bool
    peer: str

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


async def open_tunnel(client: OriginClient, request: EdgeRequest, headers: Headers) -> EdgeResponse:
    """Send the handshake for ``request`` to ``request.origin`` on a connection of its own.
    A 101 → a response holding the ``Tunnel``; any other answer → that answer, read whole
    (up to the client's ``max_body``), its connection closed."""
    target = request.origin
    assert target is not None, "the pipeline sets the origin before fetching"
    reader, writer = await _connect(client, target)
    try:
        writer.write(_handshake(request, target, headers))
        response = await _answer(reader, writer, target, client.max_body)
    except BaseException:
        writer.close()
        raise
    if response.tunnel is None:
        writer.close()
    return response


async def _connect(
    client: OriginClient, target: OriginTarget
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the origin, tried ``connection_attempts`` times within
    ``connection_timeout`` each, as the edge's other fetches are (origin/retries.py)."""
    protocol, port = client.wire_target(target)
    name = target.domain_name
    address = await client.address(name)
    tls = ssl.create_default_context() if protocol == "https" else None
    error: OriginError = OriginConnectError(f"cannot connect to {name}")
    for _ in range(max(1, target.connection_attempts)):
        opening = asyncio.open_connection(
            address, port, ssl=tls, server_hostname=name if tls else None, limit=_CHUNK
        )
        try:
            return await asyncio.wait_for(opening, target.connection_timeout)
        except ssl.SSLError as exc:
            raise OriginConnectError(f"TLS with {name} failed: {exc!r}") from exc
        except TimeoutError:
            error = OriginTimeout(f"{name} accepted no connection within connection_timeout")
        except OSError as exc:
            error = OriginConnectError(f"cannot connect to {name}: {exc!r}")
    raise error


def _handshake(request: EdgeRequest, target: OriginTarget, headers: Headers) -> bytes:
    """The request head toward the origin: the fetch's headers (hop-by-hop ones dropped,
    as for every fetch) and the upgrade, which CloudFront keeps for WebSocket (ref. 6.2)."""
    lines = [f"GET {target.path}{request.target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in outgoing_headers(headers, target).items()]
    lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if any(c in line for line in lines for c in "\r\n\0"):
        raise ValueError("a line break or NUL in the request toward the origin")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class _Answer:
    """httptools callbacks collecting the origin's answer to the handshake."""

    def __init__(self, max_body: int) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.max_body = max_body
        self.on_message_begin()

    def on_message_begin(self) -> None:  # again after an interim 1xx (100 Continue)
        self.reason = ""
        self.headers: Headers = []
        self.body: list[bytes] = []
        self.head_size = self.size = 0
        self.head_done = self.complete = False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.size += len(body)
        if self.size > self.max_body:
            raise OriginResponseError(f"a refused handshake's body over {self.max_body} bytes")
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = not 100 <= self.parser.get_status_code() < 200

    def framed(self) -> bool:
        """Whether the answer said where its body ends (else it ends with the connection)."""
        names = {name.lower() for name, _ in self.headers}
        return "content-length" in names or "transfer-encoding" in names


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: OriginTarget, limit: int
) -> EdgeResponse:
    name = target.domain_name
    answer = _Answer(limit)
    head_bytes = 0  # received while the head was incomplete: bounds an endless header too
    while not answer.complete:
        try:
            data = await asyncio.wait_for(reader.read(_CHUNK), target.read_timeout)
        except TimeoutError as exc:
            raise OriginTimeout(f"{name} did not answer within origin_read_timeout") from exc
        except OSError as exc:
            raise OriginResponseError(f"the connection to {name} failed: {exc!r}") from exc
        if not data:
            if answer.head_done and not answer.framed():
                break  # the body ended with the connection
            raise OriginResponseError(f"{name} closed the connection before the answer's end")
        head_bytes += 0 if answer.head_done else len(data)
        try:
            answer.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            rest = data[upgrade.args[0] :]
            return _switched(answer, Tunnel(reader, writer, rest))
        except httptools.HttpParserError as exc:
            raise OriginResponseError(f"{name} sent a bad answer: {exc!r}") from exc
        too_long = head_bytes if not answer.head_done else answer.head_size
        if too_long > MAX_RESPONSE_HEAD:  # CloudFront's limit on an origin's head (ref. 5)
            raise OriginResponseError(f"{name} sent over 20,480 bytes of headers")
    headers = without_hop_by_hop(answer.headers)
    status = answer.parser.get_status_code()
    return EdgeResponse(status, headers, b"".join(answer.body), answer.reason)


def _switched(answer: _Answer, tunnel: Tunnel) -> EdgeResponse:
    status = answer.parser.get_status_code()
    if status != 101:  # llhttp switches only for 101; anything else would be a defect
        tunnel.close()
        raise OriginResponseError(f"the origin switched protocols with a {status}")
    headers = without_hop_by_hop(answer.headers)
    return EdgeResponse(101, headers, reason=answer.reason, tunnel=tunnel)


class Tunnel:
    """An origin connection switched to WebSocket by its 101. ``sent`` and ``received``
    count the bytes toward the viewer (the 101 included) and from it (CloudFront's sc-bytes
    and cs-bytes for a WebSocket); ``on_close`` callbacks run once, when it closes."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._first = first  # origin bytes that came right behind its 101
        self._viewer: asyncio.Transport | None = None
        self._draining: asyncio.Task[None] | None = None
        self.sent = 0
        self.received = 0
        self.on_close: list[Callable[[], None]] = []
        self.closed = False

    async def relay(
        self,
        out: ViewerWriter,
        viewer: asyncio.Transport,
        head: bytes,
        early: bytes,
        idle_timeout: float,
    ) -> None:
        """Send ``head`` (the 101) and then the origin's bytes to the viewer until the
        origin closes or sends nothing for ``idle_timeout``; the viewer's bytes go the other
        way through ``feed`` (``early``: those that came behind its handshake)."""
        self._viewer = viewer
        try:
            self._to_viewer(out, head + self._first)
            if early:
                self.feed(early)
            viewer.resume_reading()
            while not out.closed:
                if out.paused:
                    await out.drain()
                try:
                    data = await asyncio.wait_for(self._reader.read(_CHUNK), idle_timeout)
                except TimeoutError:
                    log.info("viewer %s: WebSocket idle for %.0f s, closed", out.peer, idle_timeout)
                    return
                if not data:
                    return
                self._to_viewer(out, data)
        except OSError as exc:
            log.info("viewer %s: WebSocket origin connection failed: %s", out.peer, exc)
        finally:
            self.close()

    def _to_viewer(self, out: ViewerWriter, data: bytes) -> None:
        self.sent += len(data)
        out.write(data)

    def feed(self, data: bytes) -> None:
        """The viewer's bytes, on to the origin; the viewer's reading pauses while more
        than ``_HIGH_WATER`` bytes wait for the origin."""
        if self.closed or self._writer.is_closing():
            return
        self.received += len(data)
        self._writer.write(data)
        viewer = self._viewer
        buffered = self._writer.transport.get_write_buffer_size()
        if viewer is not None and self._draining is None and buffered > _HIGH_WATER:
            viewer.pause_reading()
            self._draining = asyncio.get_running_loop().create_task(self._drained(viewer))

    async def _drained(self, viewer: asyncio.Transport) -> None:
        try:
            await self._writer.drain()
        except OSError:
            return  # the origin is gone: relay ends and closes both sides
        finally:
            self._draining = None
        if not viewer.is_closing():
            viewer.resume_reading()

    def viewer_eof(self) -> None:
        """The viewer sent its last byte: the origin is told, and may still answer."""
        if not self.closed and self._writer.can_write_eof() and not self._writer.is_closing():
            self._writer.write_eof()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        if self._draining is not None:
            self._draining.cancel()
        for callback in self.on_close:
            try:
                callback()
            except Exception:  # a log line must not break the connection's end
                log.exception("WebSocket close callback failed")
