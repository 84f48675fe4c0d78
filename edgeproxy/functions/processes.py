"""Worker processes for ``isolation: process``: one pool per handler, each worker one warm
Lambda container.

A worker (``python -m edgeproxy.functions.processes SPEC``, or a Node.js runtime with
``node_runtime.mjs``) loads the handler itself, then answers calls one at a time over its
stdin/stdout pipes (length-prefixed JSON, ``protocol``). Its start-up is Lambda's init phase:
it has its own limit (the handler's ``init_timeout``) and does not count against a handler's
timeout. The result crosses back as the JSON text Lambda's runtime would send, with the
worker's peak memory. At a timeout, a crash or too much memory the worker is killed and the
next call starts a fresh one (globals reset, as after a Lambda timeout). A pool has as many
workers as the function's concurrency (``edge.handlers.concurrency``).
"""

from __future__ import annotations

import asyncio
import ctypes
import decimal
import json
import logging
import os
import resource
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from edgeproxy.errors import HandlerLoadError
from edgeproxy.functions.isolation import LambdaContext, detail_of, peak_memory_mb
from edgeproxy.functions.loader import INIT_TIMEOUT_S, LoadedHandler, load_handler
from edgeproxy.functions.output import runtime_stderr
from edgeproxy.functions.protocol import (
    FRAME,
    Reply,
    WorkerFailure,
    call_message,
    context_of,
    decode,
    frame,
    read_frame,
    reply_message,
    reply_of,
)
from edgeproxy.functions.spawner import RuntimeExit, Spawner
from edgeproxy.functions.user_traceback import format_user_traceback

if TYPE_CHECKING:
    from edgeproxy.functions.containers import FunctionCode


class PeakMemory:
    """A runtime's own peak resident memory, from ``VmHWM`` (its ``ru_maxrss`` would also
    count the edge it was started from, which Linux carries over ``exec`` and ``fork``).
    Reading ``/proc/self/status`` takes about 15 µs, so it is read again only when the
    resident size (``statm``, 2 µs) moved since the last call: a peak never comes and goes
    without leaving the resident size where it was, to the page."""

    def __init__(self) -> None:
        self._statm = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
        self._status = os.open("/proc/self/status", os.O_RDONLY | os.O_CLOEXEC)
        self._resident = b""
        self._peak_mb = 0

    def mb(self) -> int:
        resident = os.pread(self._statm, 128, 0).split()[1]
        if resident != self._resident:
            self._resident = resident
            status = os.pread(self._status, 8192, 0)
            at = status.find(b"VmHWM:")
            self._peak_mb = int(status[at + 6 : status.index(b"kB", at)]) // 1024
        return self._peak_mb


def worker_peak_memory_mb() -> int:
    try:
        if _PEAK is None:
            globals()["_PEAK"] = PeakMemory()
        assert _PEAK is not None
        return _PEAK.mb()
    except (OSError, ValueError):
        return peak_memory_mb()


_PEAK: PeakMemory | None = None


def _decimal(value: object) -> object:
    # Lambda's Python runtime serialises Decimal as a number and nothing else beyond JSON.
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def marshal(result: Any) -> bytes:
    """The result as the JSON text Lambda's runtime sends (its ``json.dumps``: a tuple is a
    list, a Decimal a number, keys become strings); WorkerFailure as Lambda reports a result
    it cannot serialise (a function error, not a validation error). orjson first, for speed;
    what it refuses goes through ``json.dumps`` as on Lambda, for Lambda's answer and words."""
    try:
        return orjson.dumps(result, default=_decimal, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, RecursionError):
        pass
    try:
        return json.dumps(result, default=_decimal).encode()
    except (TypeError, ValueError, RecursionError) as exc:
        raise WorkerFailure(f"Runtime.MarshalError: Unable to marshal response: {exc}") from exc


class Replies(asyncio.Protocol):
    """The reading end of a runtime's channel: frames parsed as they arrive, handed to the
    one call waiting (a runtime answers one call at a time). A frame over ``MAX_FRAME`` or a
    closed channel fails the call."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Any] | None = None
        self._pending: list[Any] = []
        self._lost: WorkerFailure | None = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= FRAME.size:
            (size,) = FRAME.unpack_from(self._buffer)
            if size > MAX_FRAME:
                self._fail(WorkerFailure(f"Runtime.InvalidReply: a reply of {size} bytes"))
                return
            if len(self._buffer) < FRAME.size + size:
                return
            payload = bytes(self._buffer[FRAME.size : FRAME.size + size])
            del self._buffer[: FRAME.size + size]
            try:
                message = decode(payload)
            except ValueError as exc:
                self._fail(WorkerFailure(f"Runtime.InvalidReply: {exc}"))
                return
            self._deliver(message)

    def _deliver(self, message: Any) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(message)
        else:
            self._pending.append(message)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(WorkerFailure(EXIT_ERROR))

    def _fail(self, failure: WorkerFailure) -> None:
        self._lost = self._lost or failure
        self._buffer.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(failure)

    async def next(self) -> Any:
        if self._pending:
            return self._pending.pop(0)
        if self._lost is not None:
            raise self._lost
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            return await self._waiter
        finally:
            self._waiter = None


# Lambda's own words for a runtime that died without a reply.
EXIT_ERROR = "Runtime.ExitError: Runtime exited without providing a reason"
MAX_FRAME = 64 * 1024 * 1024  # far above any event or result within Lambda@Edge's limits


class ExecExit:
    """A runtime process the edge started by ``exec`` (Node.js, a module spec)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pid = process.pid

    @property
    def ended(self) -> bool:
        return self.process.returncode is not None

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def wait(self) -> None:
        await self.process.wait()


class Worker:
    """One runtime process serving one function, one call at a time, over a pipe each way."""

    def __init__(
        self, runtime: ExecExit | RuntimeExit, writer: asyncio.WriteTransport, replies: Replies
    ) -> None:
        self.runtime = runtime
        self.pid = runtime.pid
        self._writer = writer
        self._replies = replies

    @classmethod
    async def spawn(
        cls,
        spec: str,
        init_timeout: float = INIT_TIMEOUT_S,
        container: Container | None = None,
        spawner: Spawner | None = None,
    ) -> Worker:
        """Start a runtime process for ``spec`` (an absolute spec) and wait until its handler
        loaded; WorkerFailure carrying the user's traceback when it does not load,
        TimeoutError when it takes over ``init_timeout`` seconds. ``container``: the
        function's folder and environment (a module spec runs with the edge's); ``spawner``:
        forks it from the container's spawner instead of starting it by ``exec``."""
        loop = asyncio.get_running_loop()
        runtime_stdin, to_runtime = _pipe()
        from_runtime, runtime_stdout = _pipe()
        try:
            if spawner is not None and container is not None:
                limit = container.memory_limit_mb or 0
                pid = await spawner.spawn(spec, limit, runtime_stdin, runtime_stdout)
                runtime: ExecExit | RuntimeExit = RuntimeExit(pid)
            else:
                process = await _exec(spec, container, runtime_stdin, runtime_stdout)
                runtime = ExecExit(process)
                below_the_edge(runtime.pid)
        except BaseException:
            os.close(to_runtime)
            os.close(from_runtime)
            raise
        finally:
            os.close(runtime_stdin)  # the runtime's ends: its own copies are what count
            os.close(runtime_stdout)
        replies = Replies()
        await loop.connect_read_pipe(lambda: replies, os.fdopen(from_runtime, "rb", 0))
        writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(to_runtime, "wb", 0)
        )
        worker = cls(runtime, writer, replies)
        try:
            kind, text = await asyncio.wait_for(replies.next(), init_timeout)
        except BaseException:
            await worker.kill()
            raise
        if kind != "ready":
            await worker.kill()
            raise WorkerFailure(f"Runtime.ImportModuleError: {text.splitlines()[0]}", text)
        return worker

    async def call(self, event: Any, context: LambdaContext) -> Reply:
        """Run the handler once; WorkerFailure when the process dies on the way."""
        self._writer.write(call_message(event, context))
        try:
            return reply_of(await self._replies.next())
        except WorkerFailure as failure:
            raise await self._exit_failure(failure) from None

    async def _exit_failure(self, failure: WorkerFailure) -> WorkerFailure:
        """Lambda's words for how the runtime ended, where the edge can know them (it is
        the parent of a runtime it started by exec, not of one a spawner forked)."""
        if failure.detail != EXIT_ERROR or not isinstance(self.runtime, ExecExit):
            return failure
        code = await self.runtime.process.wait()
        how = f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return WorkerFailure(f"Runtime.ExitError: Runtime exited with error: {how}")

    async def kill(self) -> None:
        self.runtime.kill()
        self._writer.close()
        await self.runtime.wait()

    demoted = False

    def yield_cpu(self) -> None:
        """A call that computes this long may be stuck in a loop: its process runs only when a
        CPU would otherwise idle (SCHED_IDLE), so the edge is never kept waiting for a
        scheduler slice behind it. A lower nice value alone does not do that: a waking edge
        may still wait out the slice the spinning process holds."""
        try:
            os.sched_setscheduler(self.pid, os.SCHED_IDLE, os.sched_param(0))
            self.demoted = True
        except (OSError, AttributeError):  # gone already, or not Linux
            pass

    def restore_cpu(self) -> bool:
        """Back to the normal policy after a long call that returned; False when not allowed."""
        try:
            os.sched_setscheduler(self.pid, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            return False
        self.demoted = False
        return True


def _pipe() -> tuple[int, int]:
    """A pipe whose ends are not inherited by anything else the edge starts."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    return read_end, write_end


async def _exec(
    spec: str, container: Container | None, stdin: int, stdout: int
) -> asyncio.subprocess.Process:
    limit = "0"
    if container is None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        cwd = None
    else:
        env, cwd = container.environment, str(container.task_root)
        limit = str(container.memory_limit_mb or 0)
    python = (sys.executable, "-m", "edgeproxy.functions.processes")
    argv = container.argv if container is not None and container.argv else python
    return await asyncio.create_subprocess_exec(
        *argv, spec, limit, stdin=stdin, stdout=stdout, stderr=runtime_stderr(), env=env, cwd=cwd
    )


@dataclass(frozen=True, slots=True, eq=False)
class Container:
    """Where a function's runtime processes run: its folder and its whole environment. One
    object per function and memory size (``HookRunner`` keeps them), so it is its own key:
    equal by identity (its ``repr``, the key before, cost a call as much as its event)."""

    task_root: Path
    environment: dict[str, str]
    memory_limit_mb: int | None = None  # enforced while a call runs (viewer stages: 128)
    argv: tuple[str, ...] = ()  # the runtime's command (Node.js); empty: the Python worker


# A call running this long is treated as computing (or looping): see Worker.yield_cpu. Ordinary
# handlers answer in a few milliseconds; one demoted still runs whenever a CPU is free.
LONG_CALL_S = 0.02

# Runtime processes yield the CPU to the edge: a function spinning in a loop slows other
# calls of functions, never the edge's serving of hits and origin fetches.
RUNTIME_NICENESS = 5


def below_the_edge(pid: int) -> None:
    # Set from here, not in a preexec_fn: that would force a fork of the whole edge, where
    # no preexec_fn lets Python spawn the runtime with vfork.
    try:
        os.setpriority(os.PRIO_PROCESS, pid, RUNTIME_NICENESS)
    except OSError:  # already gone: its first read of the pipe says so
        pass


class WorkerPool:
    """The worker processes of one handler: idle ones are reused (most recent first, the
    warmest container), more start while all are busy, up to ``max_workers``."""

    def __init__(
        self,
        spec: str,
        max_workers: int,
        init_timeout: float = INIT_TIMEOUT_S,
        container: Container | None = None,
    ) -> None:
        self.spec = spec
        self.init_timeout = init_timeout
        self.container = container
        self.version: object = None  # the handler's code the workers loaded (a Version)
        self._slots = asyncio.Semaphore(max_workers)
        self._idle: list[Worker] = []
        self._busy: set[Worker] = set()
        self._generation = 0
        # A Python function's cold starts fork from its spawner; Node.js and module specs exec.
        python_container = container is not None and not container.argv
        self._spawner = (
            Spawner(container.environment, str(container.task_root))
            if container is not None and python_container
            else None
        )

    async def call(
        self, event: Any, context: LambdaContext, timeout: float, memory_limit_mb: int | None
    ) -> tuple[Reply, float | None]:
        """(reply, init duration in ms when a worker was started for it); TimeoutError at
        ``timeout`` (the worker is killed), WorkerFailure when the worker dies or runs out of
        memory."""
        if self._slots.locked():  # waiting for a free slot counts, start-up not
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        else:  # a free slot is taken at once: no deadline to set up
            await self._slots.acquire()
        try:
            init_ms: float | None = None
            if self._idle:
                worker = self._idle.pop()
            else:
                start = time.perf_counter()
                worker = await Worker.spawn(
                    self.spec, self.init_timeout, self.container, self._spawner
                )
                init_ms = (time.perf_counter() - start) * 1000
            generation = self._generation
            self._busy.add(worker)
            demote = asyncio.get_running_loop().call_later(LONG_CALL_S, worker.yield_cpu)
            try:
                async with asyncio.timeout(timeout):
                    reply = await worker.call(event, context)
            except BaseException:
                await worker.kill()  # a stuck or broken worker never serves again
                raise
            finally:
                demote.cancel()
                self._busy.discard(worker)
            if worker.demoted and not worker.restore_cpu():
                generation = -1  # cannot be given its priority back: a fresh one serves next
            await self._keep(worker, generation, reply, memory_limit_mb)
            return reply, init_ms
        finally:
            self._slots.release()

    async def _keep(
        self, worker: Worker, generation: int, reply: Reply, memory_limit_mb: int | None
    ) -> None:
        if reply.fatal:
            await worker.kill()
            return
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
        if self._spawner is not None:
            await self._spawner.close()


class WorkerPools:
    """A ``WorkerPool`` per handler spec and container (one function, one memory size)."""

    def __init__(self) -> None:
        self._pools: dict[tuple[str, Container | None], WorkerPool] = {}

    async def pool(
        self,
        spec: str,
        handler: LoadedHandler | FunctionCode,
        max_workers: int,
        container: Container | None = None,
    ) -> WorkerPool:
        """The pool for ``spec``: ``max_workers`` workers (the function's concurrency) loading
        ``handler``'s current version; workers of an older version are retired first."""
        key = (spec, container)
        pool = self._pools.get(key)
        if pool is None:
            init_timeout = handler.init_timeout or INIT_TIMEOUT_S
            pool = self._pools[key] = WorkerPool(spec, max_workers, init_timeout, container)
        if pool.version is not handler.current:
            pool.version = handler.current
            await pool.retire()
        return pool

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()


# --- inside a worker process -------------------------------------------------------------------


def _send(channel: IO[bytes], message: bytes) -> None:
    channel.write(message)
    channel.flush()


def _serve_call(handler: Any, loop: asyncio.AbstractEventLoop, event: Any, context: Any) -> bytes:
    """One call, answered as its reply frame."""
    try:
        return _run_call(handler, loop, event, context)
    except MemoryError:  # the function's memory limit (RLIMIT_AS), wherever it was hit
        return _out_of_memory()


def _out_of_memory() -> bytes:
    limit = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "?")
    failure = WorkerFailure(
        f"Runtime.OutOfMemory: Runtime exited with error: the function ran out of its "
        f"{limit} MB of memory"
    )
    return reply_message(None, failure, worker_peak_memory_mb(), fatal=True)


def _run_call(handler: Any, loop: asyncio.AbstractEventLoop, event: Any, context: Any) -> bytes:
    try:
        if handler.is_async:
            result = loop.run_until_complete(handler.function(event, context))
        else:
            result = handler.function(event, context)
        return reply_message(marshal(result), None, worker_peak_memory_mb(), fatal=False)
    except WorkerFailure as marshal_failure:
        return reply_message(None, marshal_failure, worker_peak_memory_mb(), fatal=False)
    except MemoryError:
        raise
    except (Exception, SystemExit) as exc:
        raised = WorkerFailure(detail_of(exc), format_user_traceback(exc))
        return reply_message(None, raised, worker_peak_memory_mb(), fatal=False)


class _LambdaLogHandler(logging.Handler):
    """The handler Lambda's Python runtime puts on the root logger (awslambdaric's
    ``LambdaLoggerHandler``): ``[LEVEL]\\t<UTC time>Z\\t<request id>\\t<message>``, one record
    per line as CloudWatch keeps it (a message's own newlines become ``\\r``)."""

    request_id = ""

    def __init__(self) -> None:
        super().__init__()
        formatter = logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
            "%Y-%m-%dT%H:%M:%S",
        )
        formatter.converter = time.gmtime
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        record.aws_request_id = self.request_id
        try:
            line = self.format(record).replace("\n", "\r")
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


_LOG_HANDLER = _LambdaLogHandler()


def _lambda_logging() -> None:
    root = logging.getLogger()
    root.addHandler(_LOG_HANDLER)
    root.setLevel(logging.WARNING)


def die_with_the_edge() -> None:
    """Ask Linux to kill this worker when the edge that started it dies, however it dies: a
    handler stuck in a loop never reads the closed pipe that would otherwise end it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl: the closed pipe still ends an idle worker
        pass


_PR_SET_PDEATHSIG = 1


def _vm_size_bytes() -> int:
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _enter_container(memory_limit_mb: int) -> None:
    """As Lambda's runtime starts: the function's folder (``LAMBDA_TASK_ROOT``) is the working
    directory and first on ``sys.path`` for the process's life, so its modules are found at
    any time; the function's memory size bounds what it may add to the runtime's own
    (an address-space limit: an allocation past it raises MemoryError, reported as Lambda's
    out-of-memory error, and the process is replaced)."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root is None:  # a module spec: the edge's own environment
        return
    os.chdir(task_root)
    sys.path[:] = [task_root] + [p for p in sys.path if p not in ("", task_root)]
    if memory_limit_mb > 0:
        limit = _vm_size_bytes() + memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def worker_main(spec: str, memory_limit_mb: int = 0) -> None:
    """Load ``spec``, then answer calls until the edge closes the pipe.

    The pipe to the edge is moved off fd 1 first: a handler's ``print`` goes to stderr (the
    edge's log, as Lambda sends it to CloudWatch) and can never corrupt a reply.
    """
    die_with_the_edge()
    channel_in = os.fdopen(os.dup(0), "rb")
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    with open(os.devnull, "rb") as null:
        os.dup2(null.fileno(), 0)
    sys.stdout = sys.stderr
    _lambda_logging()
    _enter_container(memory_limit_mb)
    try:
        # On the main thread, as Lambda's runtime does; the edge kills a worker whose init
        # runs past its limit.
        handler = load_handler(spec, Path("/"), init_timeout=None)
    except HandlerLoadError as exc:
        _send(channel_out, frame(["load-error", str(exc)]))
        return
    _send(channel_out, frame(["ready", ""]))
    loop = asyncio.new_event_loop()  # one loop for the container's life: clients stay usable
    while (message := read_frame(channel_in)) is not None:
        context = context_of(message["context"])
        _LOG_HANDLER.request_id = context.aws_request_id
        _send(channel_out, _serve_call(handler, loop, message["event"], context))


if __name__ == "__main__":
    # Through the package's module, not __main__: one copy of its classes in the worker.
    from edgeproxy.functions.processes import worker_main as _main

    try:
        _main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    except KeyboardInterrupt:
        pass
    except Exception:
        traceback.print_exc()
        sys.exit(1)
