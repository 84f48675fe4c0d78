"""Request collapsing (reference 7.4 step 7, 7.7, 7.13): whether concurrent misses for one
cache key may share one origin fetch, and the waiting itself.

Theory of operation
-------------------
A GET miss that finds a fetch for its key under way may wait for it instead of going to the
origin; it is then answered, as a hit, from what that fetch stored. One answer is right for
every waiter only when it is an object any viewer with that key could get from the cache,
so the decision is taken in two steps, both here and nowhere else:

==================  ==========================================================================
before the fetch    ``may_collapse(route)``: the behavior caches (not Max TTL 0: CachingDisabled,
(the behavior)      legacy "forward all headers") and sends the origin neither cookies nor
                    Authorization (``KeyPolicy.collapsible``); with those the origin may answer
                    each viewer its own page while the key does not tell them apart. Otherwise
                    every miss goes to the origin with its own request.
after the fetch     ``shared_object(stored, now)``: the fetch stored a fresh object (every
(the answer)        viewer with the key gets it: Vary splits nothing, cache/vary.py). Otherwise
                    (not stored:
                    ``private``/``no-store``/``no-cache`` under Min TTL 0, Set-Cookie on an
                    answer that is not cached, Authorization without ``public``, a streamed
                    body; stored already stale: ``max-age=0``, ``s-maxage=0``) the waiter goes
                    to the origin with its own request.
==================  ==========================================================================

CloudFront names the first step, and Min TTL 0 with ``private``, ``no-store``, ``no-cache``,
``max-age=0`` or ``s-maxage=0`` as the way to keep one object from being collapsed (7.13).
Answering waiters only from the stored object is our reading of both: a waiter gets exactly
what a viewer arriving a moment later would get from the cache, never another viewer's
private answer. (A re:Post answer reports CloudFront collapsing ``no-store`` answers too; we
do not: sharing a private page is the worse error for a simulator people test against.)

``Collapser`` is the waiting: the first caller starts the fetch as its own task, later
callers await the same task; a result or an exception reaches all of them (an exception is
the edge's own error, nobody's private answer); a caller that is cancelled (a viewer who
went away) does not cancel the fetch for the others. The entry goes when the fetch ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import Generic, TypeVar

from edgeproxy.cache.store import CachedObject
from edgeproxy.routes import Route


def may_collapse(route: Route) -> bool:
    """Before the fetch: may misses on this behavior wait for another viewer's fetch?"""
    return route.key_policy.collapsible and not route.ttl_policy.caching_disabled


def shared_object(stored: CachedObject | None, now: float) -> CachedObject | None:
    """After the fetch: the object under the key that a waiter may be answered with, or
    None when it must fetch its own."""
    if stored is None or not stored.is_fresh(now):
        return None
    return stored


T = TypeVar("T")


class Collapser(Generic[T]):
    """One fetch per key for concurrent callers; see the module docstring.

    The value is shared: every caller gets the same object, so copy before changing it.
    """

    def __init__(self) -> None:
        self._in_flight: dict[Hashable, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._in_flight)

    def in_flight(self, key: Hashable) -> bool:
        return key in self._in_flight

    async def run(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> T:
        """``await factory()``, unless a fetch for ``key`` is under way: then its outcome."""
        value, _ = await self.join(key, factory)
        return value

    async def join(self, key: Hashable, factory: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """Like ``run``, also saying whether the value came from another caller's fetch
        (CloudFront logs the first caller ``Miss`` and the others ``Hit``, reference 6.5)."""
        task = self._in_flight.get(key)
        shared = task is not None
        if task is None:
            task = asyncio.get_running_loop().create_task(_call(factory))
            self._in_flight[key] = task
            task.add_done_callback(partial(self._finished, key))
        return await asyncio.shield(task), shared

    def cancel_all(self) -> None:
        """Cancel every fetch under way (shutdown)."""
        for task in list(self._in_flight.values()):
            task.cancel()

    def _finished(self, key: Hashable, task: asyncio.Task[T]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so no "never retrieved" warning if all left


async def _call(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()
