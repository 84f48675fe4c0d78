"""The benchmark origin: a tiny HTTP/1.1 server on uvloop, the same one behind every contender.

Every path has the form ``/<group>/<size>/<delay_ms>/<name…>``: the answer is ``size`` bytes,
sent ``delay_ms`` after the request arrived, cacheable for an hour. ``group`` and ``name`` only
make URLs distinct (and pick the edge's cache behavior). ``/__count/<path>`` answers how many
times ``/<path>`` was requested (the collapsing test reads it). Responses on one connection
leave in request order, so a delayed answer never overtakes an earlier one.

Run: ``python -m bench.origin --port 8081``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
from typing import cast

import uvloop

MAX_HEAD = 64 * 1024
COUNT_PREFIX = "/__count"
CACHE_CONTROL = b"public, max-age=3600"


def parse_path(path: str) -> tuple[int, float] | None:
    """``(size, delay_seconds)`` of a benchmark path, or None when it is not one."""
    parts = path.split("?", 1)[0].split("/")
    if len(parts) < 5 or not parts[2].isdigit() or not parts[3].isdigit():
        return None
    return int(parts[2]), int(parts[3]) / 1000


def response_bytes(status: str, body: bytes, cache_control: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).encode()
    return head + b"Cache-Control: " + cache_control + b"\r\n\r\n" + body


class OriginState:
    """What every connection shares: prebuilt answers by size and the request counts."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self._answers: dict[int, bytes] = {}

    def answer(self, path: str) -> tuple[bytes, float]:
        self.counts[path.split("?", 1)[0]] += 1
        if path.startswith(COUNT_PREFIX + "/"):
            count = self.counts[path[len(COUNT_PREFIX) :]]
            return response_bytes("200 OK", str(count).encode(), b"no-store"), 0.0
        parsed = parse_path(path)
        if parsed is None:
            return response_bytes("404 Not Found", b"not a bench path\n", b"no-store"), 0.0
        size, delay = parsed
        if size not in self._answers:
            self._answers[size] = response_bytes("200 OK", b"x" * size, CACHE_CONTROL)
        return self._answers[size], delay


class OriginProtocol(asyncio.Protocol):
    def __init__(self, state: OriginState) -> None:
        self.state = state
        self.buffer = b""
        self.pending: collections.deque[bytes] = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self._request(head)
        if len(self.buffer) > MAX_HEAD and self.transport is not None:
            self.transport.close()

    def _request(self, head: bytes) -> None:
        line = head.split(b"\r\n", 1)[0].split(b" ")
        path = line[1].decode("latin-1") if len(line) == 3 else "/"
        answer, delay = self.state.answer(path)
        self.pending.append(answer)
        # Every request gets one timer and every timer sends the oldest pending answer:
        # answers leave in request order even when delays differ.
        loop = asyncio.get_running_loop()
        if delay > 0 or len(self.pending) > 1:
            loop.call_later(delay, self._send_oldest)
        else:
            self._send_oldest()

    def _send_oldest(self) -> None:
        answer = self.pending.popleft()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> None:
    state = OriginState()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: OriginProtocol(state), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.origin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
