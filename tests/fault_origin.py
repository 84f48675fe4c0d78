"""A raw asyncio origin on a random loopback port that misbehaves on purpose.

Each connection is served by the behavior (the table ``BEHAVIORS``) that the next entry of
``FaultOrigin.plan`` names, or ``FaultOrigin.mode`` once the plan is used up; every
connection, request head and body is recorded, so tests can assert how many attempts the
edge made and what it sent. ``mode = "ok"`` makes it a healthy origin.
Also: a loopback port that refuses connections, and one whose accept queue is full so a
connection attempt hangs until its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

OK_BODY = b"fresh object"
OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\n"
    b"Content-Length: %d\r\n\r\n%b" % (len(OK_BODY), OK_BODY)
)
STREAM_SIZE = 1024 * 1024  # a body the client tests treat as too large to hold
HOLD_S = 10.0  # how long a stalled answer stalls at most (the edge gives up long before)


def _answer(headers: list[bytes], body: bytes = b"") -> bytes:
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(h + b"\r\n" for h in headers)
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


# Three headers of 7,000 bytes: each within any parser's field limit, 21,000+ in all.
HUGE_HEADERS = _answer([b"X-Big-%d: %b" % (i, b"a" * 7000) for i in range(3)])
# One header line of 21,000 bytes.
HUGE_FIELD = _answer([b"X-Big: " + b"a" * 21000])
# Hop-by-hop headers, one of them named by Connection, around one end-to-end header.
HOP_BY_HOP_REPLY = (
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\n"
    b"X-Hop: secret\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nX-End: kept\r\n"
    b"Content-Length: 2\r\n\r\nok"
)
# 18,000 bytes of headers in two fields over aiohttp's default 8,190: within CloudFront's limit.
BIG_BUT_ALLOWED = _answer([b"X-Big-%d: %b" % (i, b"a" * 9000) for i in range(2)], OK_BODY)


@dataclass
class FaultOrigin:
    mode: str = "ok"
    plan: list[str] = field(default_factory=list)  # modes of the next connections, in order
    port: int = 0
    connections: int = 0
    heads: list[bytes] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    reply: bytes = OK  # what mode "reply" answers to every request
    # Set once a surplus behavior has written the bytes nobody asked for.
    surplus_sent: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            mode = self.plan.pop(0) if self.plan else self.mode
            await BEHAVIORS[mode](self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request head (and its Content-Length body); b"" when the edge closed."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return b""
        self.heads.append(head)
        length, chunked = 0, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
            elif name.strip().lower() == b"transfer-encoding":
                chunked = value.strip().lower() == b"chunked"
        self.bodies.append(await _chunked(reader) if chunked else await reader.readexactly(length))
        return head


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked request body (no trailers), decoded."""
    body = b""
    while size := int((await reader.readline()).split(b";")[0], 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readline()  # the empty line after the last chunk
    return body


Behavior = Callable[[FaultOrigin, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _ok(origin: FaultOrigin, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while await origin.read_request(reader):
        w.write(OK)
        await w.drain()


async def _reply_each(
    origin: FaultOrigin, reader: asyncio.StreamReader, w: asyncio.StreamWriter
) -> None:
    while await origin.read_request(reader):
        w.write(origin.reply)
        await w.drain()


async def _close(_o: FaultOrigin, _r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
    return  # accepted, closed at once


async def _silent(
    origin: FaultOrigin, reader: asyncio.StreamReader, _w: asyncio.StreamWriter
) -> None:
    await origin.read_request(reader)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(), HOLD_S)  # until the edge gives up


async def _slow_headers(
    origin: FaultOrigin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await origin.read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
    await writer.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(), HOLD_S)


async def _answer_once_then_drop(
    origin: FaultOrigin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Keep-alive for one answer; the next request on the connection is dropped unanswered
    (as an origin closing an idle connection just as a request arrives)."""
    await origin.read_request(reader)
    writer.write(OK)
    await writer.drain()
    await origin.read_request(reader)


async def _stall_mid_body(
    origin: FaultOrigin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await origin.read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % STREAM_SIZE)
    writer.write(b"x" * (STREAM_SIZE // 4))
    await writer.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(), HOLD_S)


def _reply(data: bytes, *, reset: bool = False) -> Behavior:
    async def behave(
        origin: FaultOrigin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await origin.read_request(reader)
        writer.write(data)
        await writer.drain()
        await asyncio.sleep(0.05)  # let the bytes leave before the connection ends
        if reset:  # RST instead of FIN
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return behave


def path_answer(head: bytes, extra_body: bytes = b"") -> bytes:
    """An answer naming the path it answers (``answer for /a``), never cacheable; ``extra_body``
    is sent after the body but not counted in its Content-Length."""
    body = b"answer for " + head.split(b" ")[1]
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\n"
        b"Content-Length: %d\r\n\r\n%b%b" % (len(body), body, extra_body)
    )


STALE_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nSTALE"


def _surplus(extra: bytes, *, same_write: bool = False) -> Behavior:
    """Keep-alive answers naming their path; after the first one, ``extra`` bytes nobody asked
    for: in the same write as the answer, or a moment later (the connection idle)."""

    async def behave(
        origin: FaultOrigin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await origin.read_request(reader)
        if same_write:
            writer.write(path_answer(head, extra))
        else:
            writer.write(path_answer(head))
            await writer.drain()
            await asyncio.sleep(0.05)  # the edge has the answer and pooled the connection
            writer.write(extra)
        await writer.drain()
        origin.surplus_sent.set()
        await _paths(origin, reader, writer)

    return behave


async def _paths(
    origin: FaultOrigin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    while head := await origin.read_request(reader):
        writer.write(path_answer(head))
        await writer.drain()


async def _informational_first(
    origin: FaultOrigin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Keep-alive answers naming their path, each after a 103 Early Hints sent on its own."""
    while head := await origin.read_request(reader):
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(path_answer(head))
        await writer.drain()


BEHAVIORS: dict[str, Behavior] = {
    "ok": _ok,
    "reply": _reply_each,  # FaultOrigin.reply to every request, kept alive
    "close": _close,  # accept and close without a word
    "silent": _silent,  # read the request, never answer
    "slow_headers": _slow_headers,  # the status line, then nothing
    "reset_mid_body": _reply(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100, reset=True
    ),
    "bad_status": _reply(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"),
    "not_http": _reply(b"hello, this is not HTTP\r\n\r\n"),
    "huge_headers": _reply(HUGE_HEADERS),
    "huge_field": _reply(HUGE_FIELD),
    "big_but_allowed": _reply(BIG_BUT_ALLOWED),
    "short_body": _reply(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10),
    "hop_by_hop": _reply(HOP_BY_HOP_REPLY),
    "answer_once_then_drop": _answer_once_then_drop,
    "stall_mid_body": _stall_mid_body,  # a quarter of a STREAM_SIZE body, then nothing
    "short_stream": _reply(  # a quarter of a STREAM_SIZE body, then the connection ends
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b"
        % (STREAM_SIZE, b"x" * (STREAM_SIZE // 4))
    ),
    "short_chunked_stream": _reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%b\r\n" % (STREAM_SIZE, b"x" * STREAM_SIZE)
        + b"100\r\nabc"
    ),
    "paths": _paths,  # keep-alive answers naming their path ("answer for /a")
    # bytes after an answer, nobody having asked (the edge must not keep the connection)
    "stale_answer_later": _surplus(STALE_ANSWER),
    "stale_answer_same_write": _surplus(STALE_ANSWER, same_write=True),  # two answers, one ask
    "stale_partial_later": _surplus(STALE_ANSWER[:-3]),  # an answer's head and 2 of 5 bytes
    "stale_partial_same_write": _surplus(STALE_ANSWER[:-3], same_write=True),
    "stale_bytes_later": _surplus(b"STALE"),
    "stale_bytes_same_write": _surplus(b"STALE", same_write=True),  # body over Content-Length
    "informational_first": _informational_first,
    "chunked_cut": _reply(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc"
    ),
    # Reason phrases aiohttp accepts: one with NUL (the edge must never write it), one in
    # Latin-1 (not UTF-8), each cacheable; the NUL one also with a body to stream.
    "reason_nul": _reply(
        b"HTTP/1.1 200 O\x00K\r\nCache-Control: max-age=60\r\nContent-Length: %d\r\n\r\n%b"
        % (len(OK_BODY), OK_BODY)
    ),
    "reason_nul_stream": _reply(
        b"HTTP/1.1 200 O\x00K\r\nContent-Length: %d\r\n\r\n%b" % (STREAM_SIZE, b"x" * STREAM_SIZE)
    ),
    "reason_latin1": _reply(
        b"HTTP/1.1 200 R\xe9ussi\r\nCache-Control: max-age=60\r\nContent-Length: %d\r\n\r\n%b"
        % (len(OK_BODY), OK_BODY)
    ),
}


@contextlib.asynccontextmanager
async def running(origin: FaultOrigin, port: int = 0) -> AsyncIterator[FaultOrigin]:
    server = await asyncio.start_server(origin.serve, "127.0.0.1", port)
    origin.port = server.sockets[0].getsockname()[1]
    try:
        yield origin
    finally:
        server.close()
        for task in list(origin.tasks):
            task.cancel()
        await asyncio.gather(*origin.tasks, return_exceptions=True)
        await server.wait_closed()


def refused_port() -> int:
    """A loopback port nothing listens on (bound a moment ago, closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def never_accepting_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: a new connection's SYN goes unanswered,
    so connecting hangs until the client's connection timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = int(listener.getsockname()[1])
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
