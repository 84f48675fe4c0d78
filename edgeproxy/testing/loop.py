"""The event loop the test edge and the fake origin run on: a thread of its own, so tests
stay plain synchronous functions (no pytest-asyncio needed) and a blocking call in a test
never stalls the edge it is talking to."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from edgeproxy.runtime import loop_factory

T = TypeVar("T")

# A call into the loop that takes longer than this is a hung edge: the test fails instead
# of hanging the run. Generous, as a cold Node.js runtime on a busy CI machine takes seconds.
CALL_TIMEOUT_S = 120.0


class LoopThread:
    """An event loop (uvloop where installed, as the edge's own) running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = loop_factory()()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="edgeproxy-testing-loop", daemon=True
        )
        self._thread.start()

    def run(self, make: Callable[[], Awaitable[T]], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run the coroutine ``make()`` on the loop and wait for its result."""

        async def call() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def call(self, function: Callable[[], T]) -> T:
        """Run a plain function on the loop (for state only the loop may touch)."""

        async def call() -> T:
            return function()

        return self.run(call)

    def close(self) -> None:
        """Stop the loop after its async generators and executor are finished, then close it."""
        if self.loop.is_closed():
            return

        async def finish() -> None:
            await self.loop.shutdown_asyncgens()
            await self.loop.shutdown_default_executor()

        self.run(finish)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        self.loop.close()
