"""Where a handler call runs, and how it is stopped: the isolation modes of a hook.

* ``thread`` (default): a sync handler runs on a daemon thread (``HandlerThreads``), so a slow
  handler never stalls the event loop. At the timeout the viewer gets its 503 at once and
  ``Stopped`` is raised in the thread (``stopping``): a handler running Python code ends there;
  one blocked in C (a sleep, a lock) goes on until it returns, holding one of its function's
  concurrency slots (``concurrency``) meanwhile, so stuck calls of one function stay few.
  While it runs, a handler computing in Python shares the GIL, and so the CPU of the event
  loop, with every viewer: only ``process`` isolation gives it a CPU of its own.
* ``inline``: called on the event loop itself: the cheapest call, but the loop waits for it.
  A watchdog (``call_inline``: ``SIGALRM`` on the main thread) interrupts the handler at its
  timeout, so even ``while True: pass`` ends with a 503 then; while it runs, every other
  viewer waits. Off the main thread the timeout is checked after the call returns.
* ``process``: the handler runs in a worker process (``worker_pool``), the warm container,
  killed at the timeout: the only mode that stops a stuck handler for good.
* ``async def`` handlers are awaited on the loop under the timeout (``call_async``), whatever
  the isolation except ``process``; at the timeout they are cancelled.

This module holds what runs in the edge's own process; worker processes are
``worker_pool``'s.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import queue
import resource
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

from edgeproxy.functions.concurrency import Slot
from edgeproxy.functions.stopping import Stoppable, Stopped

Isolation = Literal["thread", "inline", "process"]
ISOLATIONS: tuple[Isolation, ...] = ("thread", "inline", "process")

REGION = "us-east-1"  # Lambda@Edge functions always live there
ACCOUNT_ID = "123456789012"
FUNCTION_VERSION = "1"  # Lambda@Edge requires a numbered version


class LambdaContext:
    """What Lambda's Python runtime passes as ``context``.

    As in the real runtime, ``memory_limit_in_mb`` and ``function_version`` are strings.
    """

    __slots__ = (
        "function_name",
        "function_version",
        "invoked_function_arn",
        "memory_limit_in_mb",
        "_request_id",
        "log_group_name",
        "log_stream_name",
        "identity",
        "client_context",
        "_deadline",
    )

    def __init__(
        self, function_name: str, memory_mb: int, timeout_s: float, log_stream_name: str
    ) -> None:
        self.function_name = function_name
        self.function_version = FUNCTION_VERSION
        self.invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}:{FUNCTION_VERSION}"
        )
        self.memory_limit_in_mb = str(memory_mb)
        self._request_id = ""  # made when first read: most calls never need it
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.identity: object = None
        self.client_context: object = None
        # time.monotonic is system-wide on Linux, so the deadline holds in a worker process too.
        self._deadline = time.monotonic() + timeout_s

    @property
    def aws_request_id(self) -> str:
        if not self._request_id:
            self._request_id = request_id()
        return self._request_id

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__slots__}  # pickled by slot
        state["_request_id"] = self.aws_request_id  # the worker reports the id the edge logs
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class Raised(Exception):
    """The user's handler raised ``original``; keeps it apart from our own TimeoutError."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original


def detail_of(exc: BaseException) -> str:
    """``ValueError: bad`` (or just the type when the message is empty)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def request_id() -> str:
    """A random (version 4) UUID, as Lambda's request IDs are: ``uuid.uuid4()``'s bytes and
    string, without building a ``UUID`` object (less than half its cost, once per call)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # variant RFC 4122
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# The peak resident memory is the address space's (the kernel's hiwater mark of the process's
# memory): RUSAGE_THREAD reads the same figure as RUSAGE_SELF on Linux without summing every
# thread's CPU times first (half the cost, less with many handler threads).
_RUSAGE = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def peak_memory_mb() -> int:
    """This process's peak resident memory (what Lambda reports as Max Memory Used)."""
    return resource.getrusage(_RUSAGE).ru_maxrss // 1024  # Linux: kilobytes


# --- sync and async calls in this process ----------------------------------------------------


def call_sync(fn: Callable[..., Any], event: Any, context: LambdaContext) -> Any:
    try:
        return fn(event, context)
    except (Exception, SystemExit) as exc:  # SystemExit: a handler calling sys.exit()
        raise Raised(exc) from exc


async def call_async(fn: Callable[..., Any], event: Any, context: LambdaContext) -> Any:
    try:
        return await fn(event, context)
    except (Exception, SystemExit) as exc:
        raise Raised(exc) from exc


def _alarm(signum: int, _frame: object) -> None:
    raise Stopped


# signal.signal wraps its C implementation, _signal.signal, in enum conversions that cost about
# 9 µs a call, twice per inline call; the C function takes and returns plain handlers.
_RAW_SIGNAL: Any = importlib.import_module("_signal")
_SIGALRM = int(signal.SIGALRM)


def call_inline(fn: Callable[..., Any], event: Any, context: LambdaContext, timeout: float) -> Any:
    """Call a sync handler on the loop's thread; TimeoutError when it runs past ``timeout``.

    On the main thread a one-shot ``SIGALRM`` interrupts the handler at the timeout (even a
    ``time.sleep`` or a busy loop); elsewhere the time is checked when the call returns.
    """
    start = time.monotonic()
    if threading.current_thread() is not threading.main_thread():
        result = call_sync(fn, event, context)
        if time.monotonic() - start > timeout:
            raise TimeoutError
        return result
    previous = _RAW_SIGNAL.signal(_SIGALRM, _alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return call_sync(fn, event, context)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Stopped:
        raise TimeoutError from None
    finally:
        _RAW_SIGNAL.signal(_SIGALRM, previous)


def _finish(job: _Job, result: Any, error: BaseException | None) -> None:
    """On the loop, once the handler has returned (or never ran): settle and free its slot."""
    if job.slot is not None:
        job.slot.release()
    if job.future.done():  # timed out and cancelled meanwhile
        return
    if error is None:
        job.future.set_result(result)
    else:
        job.future.set_exception(error)


class _Job:
    __slots__ = ("future", "loop", "call", "slot", "stoppable", "running", "abandoned")

    def __init__(
        self,
        future: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
        call: Callable[[], Any],
        slot: Slot | None,
    ) -> None:
        self.future, self.loop, self.call, self.slot = future, loop, call, slot
        self.stoppable = Stoppable()
        self.running = False
        self.abandoned = False  # given up at its timeout while its handler still runs


class HandlerThreads:
    """Daemon threads running sync handlers; grows while every thread is busy, up to
    ``max_threads`` working ones.

    A call given up at its timeout is stopped (``Stopped`` raised in its thread): a handler
    running Python code ends there. One blocked in C stays (``stopping``): its thread stops
    counting as working, so stuck handlers never use up the pool for everyone else, and its
    ``slot`` is marked stuck until the handler returns. ``hard_max`` bounds the threads in all;
    the function's slots already bound its stuck calls.
    """

    def __init__(self, max_threads: int = 64, hard_max: int = 1024) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # idle threads minus queued jobs
        self._abandoned = 0
        self._max = max_threads
        self._hard_max = hard_max

    def submit(self, call: Callable[[], Any], slot: Slot | None = None) -> asyncio.Future[Any]:
        """Run ``call`` on a thread; ``slot`` (the function's) is released, on the loop, when
        the call has returned."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        job = _Job(future, loop, call, slot)
        future.add_done_callback(lambda done: self._given_up(job, done))
        self._jobs.put(job)
        with self._lock:
            working = len(self._threads) - self._abandoned
            if self._idle <= 0 and working < self._max and len(self._threads) < self._hard_max:
                self._start_thread()
            else:
                self._idle -= 1  # an idle thread is spoken for, or the job waits its turn
        return future

    def _given_up(self, job: _Job, future: asyncio.Future[Any]) -> None:
        if not future.cancelled():
            return
        with self._lock:
            if not job.running or job.abandoned:
                return  # not started (it never will be) or already over
            job.abandoned = True
            self._abandoned += 1
        job.stoppable.stop()
        if job.slot is not None:
            job.slot.stuck()  # until _finish, if the handler ever returns

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"edgeproxy-handler-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            with self._lock:
                job.running = not job.future.cancelled()
            result, error = job.stoppable.run(job.call) if job.running else (None, None)
            with self._lock:
                job.running = False
                if job.abandoned:
                    self._abandoned -= 1
                self._idle += 1
            try:
                job.loop.call_soon_threadsafe(_finish, job, result, error)
            except RuntimeError:  # the loop is closed: nobody waits for this result any more
                pass

    def close(self) -> None:
        """Let idle threads end; busy ones end when their handler returns or is stopped."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()
