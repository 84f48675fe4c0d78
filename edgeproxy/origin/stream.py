"""An origin body too large to hold: read up to a limit, then passed on as it arrives."""

from __future__ import annotations

from collections import deque

import aiohttp

from edgeproxy.origin.retries import converted


class OriginStream:
    """An origin body too large to hold, passed on chunk by chunk as it arrives.

    Iterating yields the chunks; a body that ends short of its Content-Length (or an
    incomplete chunked one) raises ``OriginResponseError``, a stalled one ``OriginTimeout``.
    ``aclose()`` before the end drops the origin connection; the end returns it to the pool.
    """

    def __init__(
        self, resp: aiohttp.ClientResponse, host: str, first: list[bytes] | None = None
    ) -> None:
        self._resp = resp
        self._host = host
        self._first = deque(first or ())
        self._done = False

    def __aiter__(self) -> OriginStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first:
            return self._first.popleft()
        if self._done:
            raise StopAsyncIteration
        try:
            data = await self._resp.content.readany()
        except (aiohttp.ClientError, OSError) as exc:
            self._drop()
            raise converted(exc, self._host)[0] from exc
        except BaseException:
            self._drop()
            raise
        if not data:
            self._done = True
            self._resp.release()
            raise StopAsyncIteration
        return data

    async def aclose(self) -> None:
        if not self._done:
            self._drop()

    def _drop(self) -> None:
        self._done = True
        self._first.clear()
        self._resp.close()


async def read_up_to(content: aiohttp.StreamReader, limit: int) -> tuple[list[bytes], bool]:
    """The body's chunks until its end (True) or until they pass ``limit`` bytes (False)."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        data = await content.readany()
        if not data:
            return chunks, True
        chunks.append(data)
        size += len(data)
    return chunks, False
