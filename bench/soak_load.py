"""The soak's load generator: an asyncio client (aiohttp) sending a fixed mix of requests with
bounded concurrency, for a bounded time, either as fast as it can (the peak) or paced at a
rate. Every answer is checked against the status its kind must get; anything else (or a
client error) counts as unexpected. Results are gathered per window (a minute by default).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

HIT_OBJECTS = 200  # distinct cacheable URLs


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of request: its share of the mix (per 100), and the status it must get."""

    name: str
    share: int
    expected: int
    what: str


MIX: tuple[Kind, ...] = (
    Kind("hit", 70, 200, "GET /hit/<n>, 200 objects cached for an hour"),
    Kind("miss", 14, 200, "GET /miss/<unique>, no-store: always the origin"),
    Kind("origin_500", 4, 500, "GET /error/500: the origin's own 500"),
    Kind("origin_reset", 4, 502, "GET /reset/<unique>: body cut by a reset, edge's 502"),
    Kind("handler_error", 6, 503, "GET /lambda-error/<unique>: viewer-request raises"),
    Kind("invalidation", 2, 201, "POST /invalidations on the admin API (one /hit/<n>)"),
)
assert sum(k.share for k in MIX) == 100


def mix_cycle(seed: int = 7) -> list[Kind]:
    """100 kinds in a fixed shuffled order: request i is of kind cycle[i % 100]."""
    cycle = [kind for kind in MIX for _ in range(kind.share)]
    random.Random(seed).shuffle(cycle)
    return cycle


@dataclass
class Window:
    """What happened in one reporting window."""

    started: float
    latencies: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)  # "kind: status" → count

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Load:
    """Sends the mix at ``edge_url`` (and invalidations at ``admin_url``)."""

    def __init__(self, edge_url: str, admin_url: str, concurrency: int) -> None:
        self.edge_url = edge_url
        self.admin_url = admin_url
        self.concurrency = concurrency
        self.cycle = mix_cycle()
        self.window = Window(time.monotonic())
        self._index = itertools.count()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Load:
        connector = aiohttp.TCPConnector(limit=self.concurrency + 4, force_close=False)
        timeout = aiohttp.ClientTimeout(total=30)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._session is not None
        await self._session.close()

    def take_window(self) -> Window:
        """The window so far; a new one starts now."""
        done, self.window = self.window, Window(time.monotonic())
        return done

    async def warm(self) -> None:
        """Every cacheable object fetched once, so the mix's hits are hits."""
        for n in range(HIT_OBJECTS):
            await self._one(self._request_for(MIX[0], n))

    async def run(self, seconds: float, rate: float | None) -> int:
        """Send for ``seconds``: as fast as possible (``rate`` None) or ``rate`` per second.
        Returns how many requests completed."""
        start = time.monotonic()
        deadline = start + seconds
        first = next(self._index)
        done = [0]

        async def worker() -> None:
            while True:
                i = next(self._index)
                if rate is not None:
                    delay = start + (i - first) / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if time.monotonic() >= deadline:
                    return
                await self._one(self._request_for(self.cycle[i % len(self.cycle)], i))
                done[0] += 1

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return done[0]

    def _request_for(self, kind: Kind, i: int) -> tuple[Kind, str, str, dict[str, list[str]]]:
        """(kind, method, url, json body) of request ``i``."""
        paths: dict[str, Callable[[int], str]] = {
            "hit": lambda n: f"/hit/{n % HIT_OBJECTS}",
            "miss": lambda n: f"/miss/{n}",
            "origin_500": lambda _n: "/error/500",
            "origin_reset": lambda n: f"/reset/{n}",
            "handler_error": lambda n: f"/lambda-error/{n}",
        }
        if kind.name == "invalidation":
            body = {"paths": [f"/hit/{i % HIT_OBJECTS}"]}
            return kind, "POST", f"{self.admin_url}/invalidations", body
        return kind, "GET", self.edge_url + paths[kind.name](i), {}

    async def _one(self, request: tuple[Kind, str, str, dict[str, list[str]]]) -> None:
        kind, method, url, body = request
        assert self._session is not None
        window = self.window
        started = time.perf_counter()
        try:
            async with self._session.request(method, url, json=body or None) as response:
                await response.read()
                status = str(response.status)
                ok = response.status == kind.expected
        except (aiohttp.ClientError, TimeoutError) as exc:
            status, ok = type(exc).__name__, False
        window.latencies.append(time.perf_counter() - started)
        window.kinds[kind.name] += 1
        if not ok:
            window.unexpected[f"{kind.name}: {status}"] += 1
