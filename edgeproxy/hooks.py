"""Run a user's handler for a stage, the way Lambda@Edge would.

A ``Hook`` is a stage bound to a loaded handler with its timeout, Include Body flag and
isolation. ``HookRunner.run_request`` / ``run_response`` are the only entry points: build the
event, call the handler, validate the result, convert it back. What each returns:

* ``run_request`` → the ``EdgeRequest`` to continue with, or an ``EdgeResponse`` the handler
  generated (answer the viewer with it).
* ``run_response`` → the ``EdgeResponse`` to continue with.
* Either raises ``HandlerTimeout`` (503), ``HandlerExecutionError`` (503, the handler raised)
  or ``HandlerValidationError`` (502, the result broke a rule) — the pipeline renders them.

Isolation of sync handlers:

* ``thread`` (default): the call runs on a daemon thread, so a slow handler never stalls the
  event loop and other viewers keep being served. A thread cannot be killed: when a handler
  overruns its timeout the viewer gets the 503 at once and the thread is abandoned, left to
  finish (or hang) on its own; being a daemon it never blocks the process from exiting. Later
  calls get fresh threads, up to ``max_threads``.
* ``inline``: called directly on the event loop: fastest, but the loop waits for it. The
  timeout is checked after the call returns (the result is thrown away, as Lambda would have
  killed the function).
* ``process``: runs in a worker process (one per handler by default) that loads the handler
  itself; module globals live in the worker, which is then the warm container. The only
  isolation that stops a stuck handler: on timeout the worker is killed and the next call
  starts a fresh one (globals reset, as after a Lambda timeout). A worker that dies is an
  execution error. Events, contexts and results cross by pickling.

Async handlers are awaited on the loop under the timeout, whatever the isolation except
``process``; on timeout they are cancelled (a handler that swallows ``CancelledError`` delays
its own 503 until it returns).

Each call logs one ``REPORT`` line (logger ``edgeproxy.handler``), like Lambda's; a handler that
raises logs its traceback trimmed to the user's frames.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import multiprocessing
import multiprocessing.context
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from edgeproxy import events
from edgeproxy.errors import (
    ConfigError,
    HandlerExecutionError,
    HandlerTimeout,
    HandlerValidationError,
)
from edgeproxy.events import EventMeta
from edgeproxy.loader import LoadedHandler, format_user_traceback, load_handler
from edgeproxy.messages import EdgeRequest, EdgeResponse
from edgeproxy.stages import STAGE_RULES, Stage
from edgeproxy.validation import validate_request_result, validate_response_result

log = logging.getLogger("edgeproxy.handler")

Isolation = Literal["thread", "inline", "process"]
ISOLATIONS: tuple[Isolation, ...] = ("thread", "inline", "process")

REGION = "us-east-1"  # Lambda@Edge functions always live there
ACCOUNT_ID = "123456789012"
FUNCTION_VERSION = "1"  # Lambda@Edge requires a numbered version
DEFAULT_MEMORY_MB = 128  # viewer events are capped at 128 MB; origin events default to it


@dataclass(frozen=True, slots=True)
class Hook:
    """A stage bound to a handler (one ``lambda_function_association``)."""

    stage: Stage
    handler: LoadedHandler
    timeout_s: float
    include_body: bool = False
    isolation: Isolation = "thread"
    memory_mb: int = DEFAULT_MEMORY_MB

    @property
    def function_name(self) -> str:
        stem = self.handler.path.stem if self.handler.path else self.handler.name.split(":")[0]
        return f"{REGION}.{stem}"


class LambdaContext:
    """What Lambda's Python runtime passes as ``context``.

    As in the real runtime, ``memory_limit_in_mb`` and ``function_version`` are strings.
    """

    __slots__ = (
        "function_name",
        "function_version",
        "invoked_function_arn",
        "memory_limit_in_mb",
        "aws_request_id",
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
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.identity: object = None
        self.client_context: object = None
        # time.monotonic is system-wide on Linux, so the deadline holds in a worker process too.
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class _Raised(Exception):
    """The user's handler raised ``original``; keeps it apart from our own TimeoutError."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(original)
        self.original = original


def _call_sync(fn: Callable[..., Any], event: Any, context: LambdaContext) -> Any:
    try:
        return fn(event, context)
    except (Exception, SystemExit) as exc:  # SystemExit: a handler calling sys.exit()
        raise _Raised(exc) from exc


async def _call_async(fn: Callable[..., Any], event: Any, context: LambdaContext) -> Any:
    try:
        return await fn(event, context)
    except (Exception, SystemExit) as exc:
        raise _Raised(exc) from exc


_Job = tuple[asyncio.Future[Any], asyncio.AbstractEventLoop, Callable[[], Any]]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # timed out and cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class HandlerThreads:
    """Daemon threads running sync handlers; grows when every thread is busy (or stuck)."""

    def __init__(self, max_threads: int = 64) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._max = max_threads

    def submit(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._jobs.put((future, loop, call))
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._max:
                self._start_thread()
            else:
                self._idle -= 1  # this idle thread is spoken for
        return future

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"edgeproxy-handler-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, loop, call = job
            if not future.cancelled():
                self._run(future, loop, call)
            with self._lock:
                self._idle += 1

    @staticmethod
    def _run(
        future: asyncio.Future[Any], loop: asyncio.AbstractEventLoop, call: Callable[[], Any]
    ) -> None:
        result: Any = None
        error: BaseException | None = None
        try:
            result = call()
        except BaseException as exc:  # handed to the loop, which decides
            error = exc
        try:
            loop.call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:  # the loop is closed: nobody waits for this result any more
            pass

    def close(self) -> None:
        """Let idle threads end; busy (or stuck) ones end when their handler returns."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads.clear()


class _WorkerFailure(Exception):
    """A handler raised in a worker process; the traceback was formatted there."""

    def __init__(self, detail: str, traceback: str) -> None:
        super().__init__(detail, traceback)  # both in args: pickles back intact
        self.detail = detail
        self.traceback = traceback

    def __str__(self) -> str:
        return self.detail


def _worker_spec(handler: LoadedHandler) -> str:
    """The spec a worker process loads: absolute, so the worker needs no base_dir."""
    if handler.path is None or ":" not in handler.name:
        return handler.name
    return f"{handler.path}:{handler.name.rpartition(':')[2]}"


def _worker_context() -> multiprocessing.context.BaseContext:
    # Never fork the edge itself: its threads may hold locks the child would inherit locked.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)


@functools.cache
def _worker_handler(spec: str) -> LoadedHandler:
    # Runs in a worker process: the cache is that process's warm container.
    return load_handler(spec, Path("/"))


def _call_in_worker(spec: str, event: dict[str, Any], context: LambdaContext) -> Any:
    handler = _worker_handler(spec)
    handler.reload_if_changed()
    try:
        if handler.is_async:
            return asyncio.run(handler.function(event, context))
        return handler.function(event, context)
    except Exception as exc:
        return _WorkerFailure(_detail(exc), format_user_traceback(exc))


def _detail(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class _Lazy:
    """A log argument computed only if the record is emitted."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[], str]) -> None:
        self._fn = fn

    def __str__(self) -> str:
        return self._fn()


class HookRunner:
    """Runs hooks. Owns the handler threads and worker processes; ``close()`` releases them."""

    def __init__(
        self, *, max_threads: int = 64, max_processes: int = 1, reload: bool = True
    ) -> None:
        self._threads = HandlerThreads(max_threads)
        # Per handler: each worker process is one warm container with its own globals.
        self._max_processes = max_processes
        self._pools: dict[str, ProcessPoolExecutor] = {}
        self._reload = reload
        # One log stream per runner, like one warm container.
        self._log_stream = f"{time.strftime('%Y/%m/%d')}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}"

    async def run_request(
        self, hook: Hook, request: EdgeRequest, meta: EventMeta, request_id: str
    ) -> EdgeRequest | EdgeResponse:
        """viewer-request / origin-request: the request to go on with, or a generated response."""
        event = events.request_event(hook.stage, request, meta, request_id, hook.include_body)
        result = await self._invoke(hook, event)
        self._validated(
            hook, validate_request_result, hook.stage, result, request, hook.include_body
        )
        return events.request_stage_result(hook.stage, result, request, hook.include_body)

    async def run_response(
        self,
        hook: Hook,
        request: EdgeRequest,
        response: EdgeResponse,
        meta: EventMeta,
        request_id: str,
    ) -> EdgeResponse:
        """origin-response / viewer-response: the response to continue with."""
        event = events.response_event(hook.stage, request, response, meta, request_id)
        result = await self._invoke(hook, event)
        self._validated(hook, validate_response_result, hook.stage, result, response)
        return events.response_from_result(hook.stage, result, response)

    async def close(self) -> None:
        self._threads.close()
        for spec in list(self._pools):
            self._discard_pool(spec)

    # --- calling ------------------------------------------------------------------------------

    async def _invoke(self, hook: Hook, event: dict[str, Any]) -> Any:
        if self._reload and hook.isolation != "process":
            hook.handler.reload_if_changed()
        context = LambdaContext(
            hook.function_name, hook.memory_mb, hook.timeout_s, self._log_stream
        )
        start = time.perf_counter()
        try:
            return await self._call(hook, event, context, start)
        except _Raised as raised:
            raise self._execution_error(hook, context, raised.original) from raised.original
        except TimeoutError as exc:
            raise self._timeout(hook, context) from exc
        finally:
            _report(hook, context, start)

    async def _call(
        self, hook: Hook, event: dict[str, Any], context: LambdaContext, start: float
    ) -> Any:
        if hook.isolation == "process":
            return await self._in_process(hook, event, context)
        fn = hook.handler.function
        if hook.handler.is_async:
            return await asyncio.wait_for(_call_async(fn, event, context), hook.timeout_s)
        if hook.isolation == "inline":
            result = _call_sync(fn, event, context)
            if time.perf_counter() - start > hook.timeout_s:
                raise TimeoutError
            return result
        future = self._threads.submit(lambda: _call_sync(fn, event, context))
        return await asyncio.wait_for(future, hook.timeout_s)

    async def _in_process(self, hook: Hook, event: dict[str, Any], context: LambdaContext) -> Any:
        spec = _worker_spec(hook.handler)
        try:
            outcome = await asyncio.wait_for(self._submit(spec, event, context), hook.timeout_s)
        except TimeoutError:
            self._discard_pool(spec)  # unlike a thread, a stuck process can be stopped
            raise
        if isinstance(outcome, _WorkerFailure):
            raise _Raised(outcome)
        return outcome

    async def _submit(self, spec: str, event: dict[str, Any], context: LambdaContext) -> Any:
        pool = self._pools.get(spec)
        if pool is None:
            pool = self._pools[spec] = ProcessPoolExecutor(
                self._max_processes, mp_context=_worker_context()
            )
        call = functools.partial(_call_in_worker, spec, event, context)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except Exception as exc:  # a crashed worker, a result that does not pickle
            if isinstance(exc, BrokenProcessPool):
                self._discard_pool(spec)
            raise _Raised(exc) from exc

    def _discard_pool(self, spec: str) -> None:
        pool = self._pools.pop(spec, None)
        if pool is None:
            return
        # The executor has no public way to stop a busy worker; its process table does.
        table: dict[int, Any] = getattr(pool, "_processes", None) or {}
        processes = list(table.values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.kill()

    # --- errors and logs ----------------------------------------------------------------------

    def _execution_error(
        self, hook: Hook, context: LambdaContext, exc: BaseException
    ) -> HandlerExecutionError:
        log.error(
            "%s %s (RequestId: %s) raised:\n%s",
            hook.stage.value,
            hook.handler.name,
            context.aws_request_id,
            _Lazy(lambda: _user_traceback(exc)),
        )
        detail = exc.detail if isinstance(exc, _WorkerFailure) else _detail(exc)
        return HandlerExecutionError(detail, stage=hook.stage.value, handler=hook.handler.name)

    def _timeout(self, hook: Hook, context: LambdaContext) -> HandlerTimeout:
        # Lambda's own wording; a thread still running the handler is abandoned, see module doc.
        detail = f"Task timed out after {hook.timeout_s:.2f} seconds"
        log.error(
            "%s %s (RequestId: %s) %s",
            hook.stage.value,
            hook.handler.name,
            context.aws_request_id,
            detail,
        )
        return HandlerTimeout(detail, stage=hook.stage.value, handler=hook.handler.name)

    @staticmethod
    def _validated(hook: Hook, validate: Callable[..., None], *args: Any) -> None:
        try:
            validate(*args, handler=hook.handler.name)
        except HandlerValidationError as exc:
            log.error(
                "Validation error: %s %s: %s", hook.stage.value, hook.handler.name, exc.detail
            )
            raise


def _user_traceback(exc: BaseException) -> str:
    if isinstance(exc, _WorkerFailure):
        return exc.traceback.rstrip()
    return format_user_traceback(exc).rstrip()


def _report(hook: Hook, context: LambdaContext, start: float) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    duration_ms = (time.perf_counter() - start) * 1000
    log.info(
        "REPORT RequestId: %s Duration: %.2f ms Billed Duration: %d ms Memory Size: %s MB",
        context.aws_request_id,
        duration_ms,
        math.ceil(duration_ms),
        context.memory_limit_in_mb,
        extra={"stage": hook.stage.value, "handler": hook.handler.name},
    )


# --- building hooks from the config ------------------------------------------------------------


class Association(Protocol):
    """What ``build_hooks`` reads of a config's lambda_function_association."""

    @property
    def event_type(self) -> Stage | str: ...
    @property
    def handler_spec(self) -> str: ...
    @property
    def include_body(self) -> bool: ...
    @property
    def timeout(self) -> float | None: ...
    @property
    def isolation(self) -> str | None: ...


def build_hooks(
    associations: Iterable[Association],
    base_dir: Path,
    default_isolation: str = "thread",
    *,
    loaded: dict[str, LoadedHandler] | None = None,
) -> dict[Stage, Hook]:
    """One Hook per stage; a handler named twice is loaded once (it shares its globals).

    ``loaded`` (spec → handler) is filled as handlers load: pass the same dict for every cache
    behavior of a distribution (same ``base_dir``) so that a handler several behaviors name is
    one function with one set of globals, as one Lambda function would be.

    Raises HandlerLoadError for a handler that cannot be loaded and ConfigError for an
    association CloudFront would refuse.
    """
    loaded = {} if loaded is None else loaded
    hooks: dict[Stage, Hook] = {}
    for index, assoc in enumerate(associations):
        stage = Stage(assoc.event_type)
        _check_association(index, stage, assoc, hooks, default_isolation)
        if assoc.handler_spec not in loaded:
            loaded[assoc.handler_spec] = load_handler(assoc.handler_spec, base_dir)
        hooks[stage] = Hook(
            stage=stage,
            handler=loaded[assoc.handler_spec],
            timeout_s=assoc.timeout if assoc.timeout is not None else STAGE_RULES[stage].timeout_s,
            include_body=assoc.include_body,
            isolation=_isolation(assoc.isolation or default_isolation),
        )
    return hooks


def _isolation(value: str) -> Isolation:
    for isolation in ISOLATIONS:
        if value == isolation:
            return isolation
    raise ConfigError([("isolation", f"must be one of {', '.join(ISOLATIONS)}, not {value!r}")])


def _check_association(
    index: int, stage: Stage, assoc: Association, hooks: dict[Stage, Hook], default: str
) -> None:
    where = f"lambda_function_association[{index}]"
    problems: list[tuple[str, str]] = []
    if stage in hooks:
        problems.append((f"{where}.event_type", f"a second {stage.value} association"))
    if assoc.include_body and not STAGE_RULES[stage].request_stage:
        problems.append(
            (
                f"{where}.include_body",
                "The IncludeBody option can only be used with viewer-request or "
                "origin-request events.",
            )
        )
    if (assoc.isolation or default) not in ISOLATIONS:
        problems.append((f"{where}.isolation", f"must be one of {', '.join(ISOLATIONS)}"))
    if problems:
        raise ConfigError(problems)
