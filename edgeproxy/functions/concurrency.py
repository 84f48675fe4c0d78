"""How many function calls run at once: per function, the slots its calls hold; per edge, the
limit of concurrent executions past which calls are throttled.

Slots. Each version of a function (its code as loaded; a save or a config reload starts a new
one) has ``size`` slots (``edge.handlers.concurrency``): the runtimes it may have. A call holds
one from its start until its handler has really returned, which for a call given up at its
timeout may be much later (``stuck``) or never: a thread blocked in C cannot be stopped
(``stopping``). So stuck calls of one function can never pile up past its slot count, whatever
the number of viewers. A call that finds every slot held waits for one within its own timeout
(the caller's deadline cancels the wait); a call that gets none in time has timed out, as a
Lambda call stuck behind the same fault would have (503 ``LambdaExecutionError``). Only that
function's calls wait; every other function and every path without one keep serving.

Executions. Lambda throttles calls past its concurrency quota (1,000 per region by default),
and CloudFront answers them 503 ``LambdaLimitExceeded``. The edge counts the calls of all its
functions running at once, from the call's start to its answer (waiting for a slot included,
as a cold start would be), and refuses a call at once (``Throttled``) when
``edge.handlers.max_concurrent_executions`` are running.

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
# Lambda's default concurrency quota per region (Developer Guide, Quotas on Lambda@Edge).
DEFAULT_MAX_EXECUTIONS = 1000


class Throttled(Exception):
    """The edge already runs its limit of concurrent executions: the call is refused."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        # Lambda's TooManyRequestsException wording, with the limit that was reached.
        return f"Rate Exceeded: {self.limit} concurrent executions are running on this edge"


class Executions:
    """The edge-wide count of function calls running at once."""

    def __init__(self, limit: int = DEFAULT_MAX_EXECUTIONS) -> None:
        self.limit = limit
        self.running = 0

    def start(self) -> None:
        """Count one more running call; Throttled when the limit is reached."""
        if self.running >= self.limit:
            raise Throttled(self.limit)
        self.running += 1

    def end(self) -> None:
        self.running -= 1


class Slots:
    """The slots of one version of one function."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.live = 0  # calls still within their time
        self.stuck = 0  # calls given up at their timeout whose handler still runs
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> Slot:
        """A slot, once free; the caller's timeout bounds the wait."""
        if self.live + self.stuck < self.size:
            self.live += 1
            return Slot(self)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:  # the caller's timeout: give back a slot handed over
            if waiter.done() and not waiter.cancelled():
                self._free("live")
            raise
        finally:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
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
                waiter.set_result(None)
                return

    def _went_stuck(self) -> None:
        self.live -= 1
        self.stuck += 1


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
