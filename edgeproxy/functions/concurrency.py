"""Per-function concurrency: the slots a function's calls hold, and throttling.

Each version of a function (its code as loaded; a save or a config reload starts a new one)
has ``size`` slots (``edge.handlers.concurrency``). A call holds one from its start until its
handler has really returned, which for a call given up at its timeout may be much later
(``stuck``) or never: a thread blocked in C cannot be stopped (``stopping``). So stuck calls
of one function can never pile up past its slot count, whatever the number of viewers.

A call that finds every slot held waits for one, within its own timeout, while at least one
holder is still within its time (a burst of quick calls queues briefly, as before). When every
slot is held by a stuck call, there is nothing to wait for: the call is refused at once
(``Throttled``), as Lambda throttles a function at its concurrency limit, and CloudFront
answers 503 ``LambdaLimitExceeded``; calls already waiting are refused then too. Only that
function is refused; every other function and every path without one keep serving.

All of it runs on the event loop; a handler thread hands its ``release`` back to the loop.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from typing import Literal

# Small, since thread-isolated calls share one interpreter: enough for a few calls blocked
# on I/O at once, few enough that stuck ones cost little.
DEFAULT_CONCURRENCY = max(4, os.cpu_count() or 1)


class Throttled(Exception):
    """Every slot of the function is held by a stuck call: the call is refused."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size

    def __str__(self) -> str:
        return (
            f"Rate Exceeded: all {self.size} concurrent executions of the function are held "
            "by calls that timed out and are still running"
        )


class Slots:
    """The slots of one version of one function."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.live = 0  # calls still within their time
        self.stuck = 0  # calls given up at their timeout whose handler still runs
        self._waiting: deque[asyncio.Future[bool]] = deque()

    async def acquire(self) -> Slot:
        """A slot, once free; Throttled when every slot is held by a stuck call."""
        if self.live + self.stuck < self.size:
            self.live += 1
            return Slot(self)
        if self.live == 0:
            raise Throttled(self.size)
        waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:  # the caller's timeout: give back a slot handed over
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self._free("live")
            raise
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
        if not handed:
            raise Throttled(self.size)
        return Slot(self)

    def _free(self, state: Literal["live", "stuck"]) -> None:
        if state == "live":
            self.live -= 1
        else:
            self.stuck -= 1
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self.live += 1  # handed over: the waiter holds it from now on
                waiter.set_result(True)
                return

    def _went_stuck(self) -> None:
        self.live -= 1
        self.stuck += 1
        if self.live > 0:
            return
        while self._waiting:  # nobody left who could free a slot in time
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(False)


class Slot:
    """One call's hold on a slot: ``stuck`` when given up while its handler still runs,
    ``release`` when the handler has returned (or never ran). Each takes effect once."""

    __slots__ = ("_slots", "_state")

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self._state: Literal["live", "stuck", "free"] = "live"

    def stuck(self) -> None:
        if self._state == "live":
            self._state = "stuck"
            self._slots._went_stuck()

    def release(self) -> None:
        if self._state != "free":
            state, self._state = self._state, "free"
            self._slots._free(state)
