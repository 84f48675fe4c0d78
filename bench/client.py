"""A small HTTP/1.1 client on raw asyncio streams, for what wrk cannot do: fire N requests
for one key at the same instant (collapsing), fetch a list of distinct URLs over a few
keep-alive connections (filling the cache), and read one answer's headers (hit checks).
It reads Content-Length bodies only, which is all the bench origin and the contenders send."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from .procs import HOST


class ClientError(RuntimeError):
    """An answer that is not the HTTP/1.1 the benchmark expects."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated name keeps its last value
    body_length: int
    body: bytes = b""  # kept only when asked for (``get``): fills would hold 160 MB

    @property
    def body_text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers of a response head (without the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise ClientError(f"not an HTTP/1.x status line: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


def request_bytes(path: str, port: int) -> bytes:
    head = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: edgeproxy-bench\r\n"
    return (head + "\r\n").encode()


async def read_answer(reader: asyncio.StreamReader, keep_body: bool = False) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    status, headers = parse_head(head[:-4])
    length = int(headers.get("content-length", "0"))
    if "chunked" in headers.get("transfer-encoding", ""):
        raise ClientError("chunked answers are not expected from the bench servers")
    body = await reader.readexactly(length)
    return Answer(status, headers, length, body if keep_body else b"")


async def get(port: int, path: str, timeout_s: float = 30.0) -> Answer:
    """One GET on a fresh connection."""
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            writer.write(request_bytes(path, port))
            return await read_answer(reader, keep_body=True)
        finally:
            writer.close()


async def simultaneous(port: int, path: str, count: int, timeout_s: float = 60.0) -> list[Answer]:
    """``count`` GETs for ``path``, each on its own connection, all opened first and then
    written back to back, so they reach the server together."""
    async with asyncio.timeout(timeout_s):
        conns = await asyncio.gather(
            *(asyncio.open_connection(HOST, port) for _ in range(count))
        )
        try:
            payload = request_bytes(path, port)
            for _reader, writer in conns:
                writer.write(payload)
            return list(await asyncio.gather(*(read_answer(r) for r, _w in conns)))
        finally:
            for _reader, writer in conns:
                writer.close()


async def fetch_all(
    port: int, paths: Sequence[str], connections: int = 16, timeout_s: float = 300.0
) -> list[Answer]:
    """GET every path once over ``connections`` keep-alive connections."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for path in paths:
        queue.put_nowait(path)
    answers: list[Answer] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while not queue.empty():
                writer.write(request_bytes(queue.get_nowait(), port))
                answers.append(await read_answer(reader))
        finally:
            writer.close()

    async with asyncio.timeout(timeout_s):
        await asyncio.gather(*(worker() for _ in range(connections)))
    return answers
