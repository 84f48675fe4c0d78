"""Where a handler call runs, and how it is stopped: the isolation modes of a hook.

* ``thread`` (default): a sync handler runs on a daemon thread (``HandlerThreads``), so a slow
  handler never stalls the event loop. A thread cannot be killed: at the timeout the viewer
  gets its 503 at once and the thread is abandoned, left to finish (or hang) on its own; being
  a daemon it never keeps the process alive. The pool grows while every thread is busy (or
  stuck), up to ``max_threads``; past that, calls queue and time out.
* ``inline``: called on the event loop itself: the cheapest call, but the loop waits for it.
  A watchdog (``call_inline``: ``SIGALRM`` on the main thread) interrupts the handler at its
  timeout, so even ``while True: pass`` ends with a 503 then; while it runs, every other
  viewer waits. Off the main thread the timeout is checked after the call returns.
* ``process``: the handler runs in a worker process of its own (``WorkerPools``), the warm
  container: it loads the handler itself and keeps its globals. The only mode that stops a
  stuck handler for good: at the timeout the worker is killed (globals reset, as after a
  Lambda timeout) and the next call starts a fresh one. Start-up (Lambda's init phase) does
  not count against the handler's timeout; it has its own limit (``INIT_TIMEOUT_S``). The
  result crosses back as JSON, exactly as Lambda marshals it, and each reply carries the
  worker's peak memory, which can be held to a limit.
* ``async def`` handlers are awaited on the loop under the timeout (``call_async``), whatever
  the isolation except ``process``; at the timeout they are cancelled.

``python -m edgeproxy.isolation SPEC`` is the worker's entry point (``worker_main``).
"""

from __future__ import annotations

import asyncio
import decimal
import importlib
import json
import os
import pickle
import queue
import resource
import signal
import struct
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from edgeproxy.errors import HandlerLoadError
from edgeproxy.loader import format_user_traceback, load_handler

Isolation = Literal["thread", "inline", "process"]
ISOLATIONS: tuple[Isolation, ...] = ("thread", "inline", "process")

REGION = "us-east-1"  # Lambda@Edge functions always live there
ACCOUNT_ID = "123456789012"
FUNCTION_VERSION = "1"  # Lambda@Edge requires a numbered version
INIT_TIMEOUT_S = 10.0  # Lambda's limit for the init phase (loading the handler's module)


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
            self._request_id = str(uuid.uuid4())
        return self._request_id

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__slots__}
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


class WorkerFailure(Exception):
    """A handler failed in a worker process; ``traceback`` was formatted there."""

    def __init__(self, detail: str, traceback: str = "") -> None:
        super().__init__(detail, traceback)
        self.detail = detail
        self.traceback = traceback

    def __str__(self) -> str:
        return self.detail


def detail_of(exc: BaseException) -> str:
    """``ValueError: bad`` (or just the type when the message is empty)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def peak_memory_mb() -> int:
    """This process's peak resident memory (what Lambda reports as Max Memory Used)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux: kilobytes


def worker_peak_memory_mb() -> int:
    """A worker's own peak resident memory, from ``VmHWM``: its ``ru_maxrss`` would also
    count the edge it was started from, since Linux carries that over ``exec``."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) // 1024  # kB
    except OSError:
        pass
    return peak_memory_mb()


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


class _Alarm(BaseException):
    """Raised into an inline handler at its timeout; a BaseException so that a handler's own
    ``except Exception`` cannot swallow it."""


def _alarm(signum: int, frame: object) -> None:
    raise _Alarm


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
    except _Alarm:
        raise TimeoutError from None
    finally:
        _RAW_SIGNAL.signal(_SIGALRM, previous)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # timed out and cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class _Job:
    __slots__ = ("future", "loop", "call", "running", "abandoned")

    def __init__(
        self, future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop, call: Callable[[], Any]
    ) -> None:
        self.future, self.loop, self.call = future, loop, call
        self.running = False
        self.abandoned = False  # given up at its timeout while its handler still runs


class HandlerThreads:
    """Daemon threads running sync handlers; grows while every thread is busy, up to
    ``max_threads`` working ones.

    A call given up at its timeout leaves its thread inside the handler: that thread stops
    counting as working (so stuck handlers never use up the pool for everyone else) and
    counts again once its handler returns. ``hard_max`` bounds the threads in all.
    """

    def __init__(self, max_threads: int = 64, hard_max: int = 1024) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # idle threads minus queued jobs
        self._abandoned = 0
        self._max = max_threads
        self._hard_max = hard_max

    def submit(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        job = _Job(future, loop, call)
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
            if job.running and not job.abandoned:
                job.abandoned = True
                self._abandoned += 1

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
            if job.running:
                self._run(job)
            with self._lock:
                job.running = False
                if job.abandoned:
                    self._abandoned -= 1
                self._idle += 1

    @staticmethod
    def _run(job: _Job) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = job.call()
        except BaseException as exc:  # handed to the loop, which decides
            error = exc
        try:
            job.loop.call_soon_threadsafe(_settle, job.future, result, error)
        except RuntimeError:  # the loop is closed: nobody waits for this result any more
            pass

    def close(self) -> None:
        """Let idle threads end; busy (or stuck) ones end when their handler returns."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()


# --- worker processes --------------------------------------------------------------------------

_FRAME = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Reply:
    """A worker's answer to one call: the result as Lambda's JSON, or a failure."""

    result_json: str | None
    failure: WorkerFailure | None
    peak_memory_mb: int


def _decimal(value: object) -> object:
    # Lambda's Python runtime serialises Decimal as a number and nothing else beyond JSON.
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def marshal(result: Any) -> str:
    """The result as the JSON text Lambda's runtime sends; WorkerFailure as Lambda reports a
    result it cannot serialise (a function error, not a validation error)."""
    try:
        return json.dumps(result, default=_decimal)
    except (TypeError, ValueError, RecursionError) as exc:
        raise WorkerFailure(f"Runtime.MarshalError: Unable to marshal response: {exc}") from exc


class Worker:
    """One worker process serving one handler, one call at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def spawn(cls, spec: str) -> Worker:
        """Start a worker for ``spec`` (an absolute spec) and wait until its handler loaded;
        WorkerFailure carrying the user's traceback when it does not load."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "edgeproxy.isolation",
            spec,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
        worker = cls(process)
        try:
            kind, text = await asyncio.wait_for(worker._receive(), INIT_TIMEOUT_S)
        except BaseException:
            await worker.kill()
            raise
        if kind != "ready":
            await worker.kill()
            raise WorkerFailure(f"Runtime.ImportModuleError: {text.splitlines()[0]}", text)
        return worker

    async def call(self, event: Any, context: LambdaContext) -> Reply:
        """Run the handler once; WorkerFailure when the process dies on the way."""
        assert self.process.stdin is not None
        payload = pickle.dumps((event, context), pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(_FRAME.pack(len(payload)) + payload)
        await self.process.stdin.drain()
        reply: Reply = await self._receive()
        return reply

    async def _receive(self) -> Any:
        assert self.process.stdout is not None
        try:
            (size,) = _FRAME.unpack(await self.process.stdout.readexactly(_FRAME.size))
            return pickle.loads(await self.process.stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await self.process.wait()
            raise WorkerFailure(
                f"Runtime.ExitError: the worker process exited with status {code}"
            ) from exc

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class WorkerPool:
    """The worker processes of one handler: idle ones are reused (most recent first, the
    warmest container), more start while all are busy, up to ``max_workers``."""

    def __init__(self, spec: str, max_workers: int) -> None:
        self.spec = spec
        self._slots = asyncio.Semaphore(max_workers)
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._generation = 0

    async def call(
        self, event: Any, context: LambdaContext, timeout: float, memory_limit_mb: int | None
    ) -> tuple[Reply, float | None]:
        """(reply, init duration in ms when a worker was started for it); TimeoutError at
        ``timeout`` (the worker is killed), WorkerFailure when the worker dies or runs out of
        memory."""
        async with asyncio.timeout(timeout):  # waiting for a free slot counts, start-up not
            await self._slots.acquire()
        try:
            init_ms: float | None = None
            if self._idle:
                worker = self._idle.pop()
            else:
                start = time.perf_counter()
                worker = await Worker.spawn(self.spec)
                init_ms = (time.perf_counter() - start) * 1000
            generation = self._generation
            self._busy.add(worker)
            try:
                async with asyncio.timeout(timeout):
                    reply = await worker.call(event, context)
            except BaseException:
                await worker.kill()  # a stuck or broken worker never serves again
                raise
            finally:
                self._busy.discard(worker)
            await self._keep(worker, generation, reply, memory_limit_mb)
            return reply, init_ms
        finally:
            self._slots.release()

    async def _keep(
        self, worker: Worker, generation: int, reply: Reply, memory_limit_mb: int | None
    ) -> None:
        if memory_limit_mb is not None and reply.peak_memory_mb > memory_limit_mb:
            await worker.kill()
            raise WorkerFailure(
                f"Runtime.OutOfMemory: max memory used {reply.peak_memory_mb} MB is over the "
                f"function's {memory_limit_mb} MB"
            )
        if generation == self._generation:
            self._idle.append(worker)
        else:
            await worker.kill()  # the handler was reloaded while this call ran

    async def retire(self) -> None:
        """Kill idle workers now and busy ones when their call returns (the handler changed)."""
        self._generation += 1
        idle, self._idle = self._idle, []
        for worker in idle:
            await worker.kill()

    async def close(self) -> None:
        await self.retire()
        for worker in list(self._busy):
            await worker.kill()


class WorkerPools:
    """A ``WorkerPool`` per handler spec."""

    def __init__(self, max_workers: int = 4) -> None:
        self._max = max_workers
        self._pools: dict[str, WorkerPool] = {}

    def pool(self, spec: str) -> WorkerPool:
        pool = self._pools.get(spec)
        if pool is None:
            pool = self._pools[spec] = WorkerPool(spec, self._max)
        return pool

    async def retire(self, spec: str) -> None:
        pool = self._pools.get(spec)
        if pool is not None:
            await pool.retire()

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()


# --- inside a worker process -------------------------------------------------------------------


def _send(channel: IO[bytes], message: Any) -> None:
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    channel.write(_FRAME.pack(len(payload)) + payload)
    channel.flush()


def _receive(channel: IO[bytes]) -> Any:
    head = channel.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None  # the edge closed the pipe: time to go
    (size,) = _FRAME.unpack(head)
    return pickle.loads(channel.read(size))


def _serve_call(handler: Any, loop: asyncio.AbstractEventLoop, event: Any, context: Any) -> Reply:
    try:
        if handler.is_async:
            result = loop.run_until_complete(handler.function(event, context))
        else:
            result = handler.function(event, context)
        return Reply(marshal(result), None, worker_peak_memory_mb())
    except WorkerFailure as marshal_failure:
        return Reply(None, marshal_failure, worker_peak_memory_mb())
    except (Exception, SystemExit) as exc:
        raised = WorkerFailure(detail_of(exc), format_user_traceback(exc))
        return Reply(None, raised, worker_peak_memory_mb())


def worker_main(spec: str) -> None:
    """Load ``spec``, then answer calls until the edge closes the pipe.

    The pipe to the edge is moved off fd 1 first: a handler's ``print`` goes to stderr (the
    edge's log, as Lambda sends it to CloudWatch) and can never corrupt a reply.
    """
    channel_in = os.fdopen(os.dup(0), "rb")
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    with open(os.devnull, "rb") as null:
        os.dup2(null.fileno(), 0)
    sys.stdout = sys.stderr
    try:
        handler = load_handler(spec, Path("/"))
    except HandlerLoadError as exc:
        _send(channel_out, ("load-error", str(exc)))
        return
    _send(channel_out, ("ready", ""))
    loop = asyncio.new_event_loop()  # one loop for the container's life: clients stay usable
    while (message := _receive(channel_in)) is not None:
        event, context = message
        _send(channel_out, _serve_call(handler, loop, event, context))


if __name__ == "__main__":
    # Through the package's module, not __main__: what a worker pickles must name classes the
    # edge can import (edgeproxy.isolation.Reply, not __main__.Reply).
    from edgeproxy.isolation import worker_main as _main

    try:
        _main(sys.argv[1])
    except KeyboardInterrupt:
        pass
    except Exception:
        traceback.print_exc()
        sys.exit(1)
