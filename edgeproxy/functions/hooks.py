"""Run a user's handler for a stage, the way Lambda@Edge would.

A ``Hook`` is a stage bound to a loaded handler with its timeout, Include Body flag and
isolation. ``HookRunner.run_request`` / ``run_response`` are the pipeline's entry points: build
the event, call the handler, validate the result, convert it back. What each returns:

* ``run_request`` → the ``EdgeRequest`` to continue with, or an ``EdgeResponse`` the handler
  generated (answer the viewer with it).
* ``run_response`` → the ``EdgeResponse`` to continue with.
* Either raises ``HandlerTimeout`` (503 LambdaExecutionError: it ran, or waited for a free
  runtime, past its timeout), ``HandlerThrottled`` (503 LambdaLimitExceeded: the edge already
  runs ``edge.handlers.max_concurrent_executions`` calls), ``HandlerExecutionError`` (503:
  the handler raised, its worker died, or its file no longer loads) or
  ``HandlerValidationError`` (502, the result broke a rule of ``validation.RULES``) — the
  pipeline renders them (``errors.LAMBDA_ANSWERS``).

``invoke`` is the call alone (event in, raw result out) for ``edgeproxy invoke``. Where the
call runs and how it is stopped at its timeout is ``isolation``'s business; how many calls of
one function may run at once, ``concurrency``'s (thread isolation) and ``worker_pool``'s
(process isolation: as many workers).

Before each call the handler file is checked for changes (``LoadedHandler.refresh``): a save
takes effect on the next request, its module loaded on a thread, never on the event loop; a
save that does not load makes the stage answer 503 until the file loads again. Process
workers of a changed handler are retired.

Each call logs one ``REPORT`` line (``handler_log``), like Lambda's; a handler that raises
logs its traceback trimmed to the user's frames.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from edgeproxy.errors import ConfigError, HandlerExecutionError
from edgeproxy.functions import events
from edgeproxy.functions.cloudfront.runner import FunctionRuntime
from edgeproxy.functions.concurrency import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_EXECUTIONS,
    Executions,
    Slots,
    Throttled,
)
from edgeproxy.functions.containers import (
    FunctionCode,
    function_code,
    lambda_environment,
    python_runtime,
)
from edgeproxy.functions.events import EventMeta
from edgeproxy.functions.handler_log import (
    CallRecord,
    execution_error,
    report,
    throttled_error,
    timeout_error,
    validated,
)
from edgeproxy.functions.handler_strings import (
    CODE_WITH_FILE_SPEC,
    RUNTIMES,
    LambdaHandler,
    is_lambda_form,
    language_of,
    needs_code,
    resolve,
)
from edgeproxy.functions.hook import Hook
from edgeproxy.functions.isolation import (
    FUNCTION_VERSION,
    ISOLATIONS,
    HandlerThreads,
    Isolation,
    LambdaContext,
    Raised,
    call_async,
    call_inline,
    call_sync,
)
from edgeproxy.functions.loader import (
    INIT_TIMEOUT_S,
    LoadedHandler,
    Version,
    is_file_target,
    load_handler,
    parse_spec,
    runtime_error_detail,
)
from edgeproxy.functions.node import (
    DEFAULT_RUNTIME,
    check_runtime,
    is_node_target,
    node_argv,
)
from edgeproxy.functions.output import flush_function_lines
from edgeproxy.functions.processes import Container, WorkerPools
from edgeproxy.functions.protocol import WorkerFailure
from edgeproxy.functions.trace import StageTrace
from edgeproxy.functions.validation import validate_request_result, validate_response_result
from edgeproxy.messages import EdgeRequest, EdgeResponse
from edgeproxy.stages import Stage, body_shown_up_to, may_include_body, timeout_for

__all__ = ["Hook", "HookRunner", "Isolation", "LambdaContext", "build_hooks"]


class HookRunner:
    """Runs hooks. Owns the handler threads and worker processes; ``close()`` releases them."""

    def __init__(
        self,
        *,
        max_threads: int = 64,
        reload: bool = True,
        max_executions: int = DEFAULT_MAX_EXECUTIONS,
    ) -> None:
        self._threads = HandlerThreads(max_threads)
        # Calls of all functions running at once: past the limit, Lambda throttles.
        self.executions = Executions(max_executions)
        self._workers = WorkerPools()  # per handler: each worker a warm container
        self.functions = FunctionRuntime()  # every CloudFront Function, in one process
        # Thread-isolated calls hold a slot of their function's version (functions/concurrency.py).
        self._slots: weakref.WeakKeyDictionary[Version, Slots] = weakref.WeakKeyDictionary()
        self._reload = reload
        self._containers: dict[tuple[str, str, int, int | None], Container] = {}
        # One log stream per runner, like one warm container.
        self._log_stream = f"{time.strftime('%Y/%m/%d')}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}"

    async def run_request(
        self,
        hook: Hook,
        request: EdgeRequest,
        meta: EventMeta,
        request_id: str,
        trace: StageTrace | None = None,
    ) -> EdgeRequest | EdgeResponse:
        """viewer-request / origin-request: the request to go on with, or a generated response.
        ``trace``: filled with the event, the result and the REPORT figures."""
        shown = await _body_shown(hook.stage, request) if hook.include_body else request
        event = events.request_event(hook.stage, shown, meta, request_id, hook.include_body)
        result = await self.invoke(hook, event, trace)
        same = validated(
            hook, validate_request_result, hook.stage, result, request, hook.include_body
        )
        return events.request_stage_result(hook.stage, result, request, hook.include_body, same)

    async def run_response(
        self,
        hook: Hook,
        request: EdgeRequest,
        response: EdgeResponse,
        meta: EventMeta,
        request_id: str,
        trace: StageTrace | None = None,
    ) -> EdgeResponse:
        """origin-response / viewer-response: the response to continue with."""
        event = events.response_event(hook.stage, request, response, meta, request_id)
        result = await self.invoke(hook, event, trace)
        same = validated(hook, validate_response_result, hook.stage, result, response)
        return events.response_from_result(hook.stage, result, response, same)

    async def invoke(
        self, hook: Hook, event: dict[str, Any], trace: StageTrace | None = None
    ) -> Any:
        """Call the hook's handler with ``event`` under its isolation and timeout; the raw
        result. Raises HandlerTimeout, HandlerThrottled or HandlerExecutionError."""
        if trace is not None:  # copied before the call: a handler may change it in place
            trace.took_event(event)
        await self._refresh(hook)
        try:
            self.executions.start()
        except Throttled as throttled:  # never ran: no RequestId, no REPORT line
            raise throttled_error(hook, throttled) from throttled
        call = CallRecord(
            LambdaContext(hook.function_name, hook.memory_mb, hook.timeout_s, self._log_stream),
            time.perf_counter(),
        )
        try:
            result = await self._call(hook, event, call)
            if trace is not None:
                trace.took_result(result)
            return result
        except Raised as raised:
            raise execution_error(hook, call.context, raised.original) from raised.original
        except TimeoutError as exc:
            raise timeout_error(hook, call.context) from exc
        finally:
            self.executions.end()
            report(hook, call, trace)

    async def close(self) -> None:
        self._threads.close()
        await self._workers.close()
        await self.functions.close()

    # --- calling ------------------------------------------------------------------------------

    async def _refresh(self, hook: Hook) -> None:
        """Pick up a saved handler file (loaded off the loop); refuse to call one whose last
        save does not load."""
        handler = hook.handler
        if self._reload:
            await handler.refresh()
        if handler.broken is not None:
            raise HandlerExecutionError(
                runtime_error_detail(handler.broken), stage=hook.stage.value, handler=handler.name
            )

    async def _call(self, hook: Hook, event: dict[str, Any], call: CallRecord) -> Any:
        handler = hook.handler
        if hook.isolation == "process" or isinstance(handler, FunctionCode):
            return await self._in_process(hook, event, call)
        version, context = handler.current, call.context
        fn = version.function
        if hook.isolation == "inline" and not version.is_async:
            return call_inline(fn, event, context, hook.timeout_s)
        # asyncio.timeout, not wait_for: no extra task per call (a third of an async call's
        # cost); it cancels what is awaited at the deadline. Waiting for a slot counts.
        async with asyncio.timeout(hook.timeout_s) as deadline:
            if version.is_async:
                result = await call_async(fn, event, context)
            else:
                slot = await self._slots_of(hook, version).acquire()
                result = await self._threads.submit(lambda: call_sync(fn, event, context), slot)
        if deadline.expired():  # a handler that swallowed the cancellation: still too late
            raise TimeoutError
        return result

    def _slots_of(self, hook: Hook, version: Version) -> Slots:
        slots = self._slots.get(version)
        if slots is None:
            slots = self._slots[version] = Slots(hook.concurrency)
        return slots

    def _container_of(self, hook: Hook) -> Container | None:
        """A function's folder and Lambda environment (None: a module spec, which runs in the
        edge's environment)."""
        code = hook.handler
        if not isinstance(code, FunctionCode):
            return None
        key = (code.spec, hook.function_name, hook.memory_mb, hook.memory_limit_mb)
        container = self._containers.get(key)
        if container is None:
            runtime = code.runtime or python_runtime()
            environment = lambda_environment(
                hook.function_name, hook.memory_mb, code.folder, code.handler, runtime
            )
            argv = node_argv(hook.memory_limit_mb) if code.runtime else ()
            container = self._containers[key] = Container(
                code.folder, environment, hook.memory_limit_mb, argv
            )
        return container

    async def _in_process(self, hook: Hook, event: dict[str, Any], call: CallRecord) -> Any:
        pool = await self._workers.pool(
            hook.worker_spec, hook.handler, hook.concurrency, self._container_of(hook)
        )
        # The runtime writes its output straight to the functions' log: the lines the edge
        # holds (earlier calls' REPORT lines) go first, so the log keeps the calls' order.
        flush_function_lines()
        try:
            reply, call.init_ms = await pool.call(
                event, call.context, hook.timeout_s, hook.memory_limit_mb
            )
        except WorkerFailure as failure:
            raise Raised(failure) from failure
        except TimeoutError:  # an OSError too, but ours: the handler ran out of time
            raise
        except OSError as exc:  # the worker could not be started at all
            raise Raised(exc) from exc
        call.memory_mb = reply.peak_memory_mb
        if reply.failure is not None:
            raise Raised(reply.failure)
        return reply.result


# --- building hooks from the config ------------------------------------------------------------


class Association(Protocol):
    """What ``build_hooks`` reads of a config's lambda_function_association (and, when
    present, ``handler_code`` and ``handler_runtime``: the function's folder for Lambda's
    handler form and its runtime, the association's own or its ``edge.functions`` entry's)."""

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


Loaded = dict[str, LoadedHandler | FunctionCode]


def build_hooks(
    associations: Iterable[Association],
    base_dir: Path,
    default_isolation: str = "process",
    *,
    loaded: Loaded | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    init_timeout: float = INIT_TIMEOUT_S,
) -> dict[Stage, Hook]:
    """One Hook per stage; a handler named twice is loaded once (it shares its globals).

    ``loaded`` (spec → handler) is filled as handlers load: pass the same dict for every cache
    behavior of a distribution (same ``base_dir``) so that a handler several behaviors name is
    one function with one set of globals, as one Lambda function would be. ``concurrency`` and
    ``init_timeout`` are ``edge.handlers``' settings.

    Raises HandlerLoadError for a handler that cannot be loaded and ConfigError for an
    association CloudFront would refuse.
    """
    loaded = {} if loaded is None else loaded
    hooks: dict[Stage, Hook] = {}
    for index, assoc in enumerate(associations):
        stage = Stage(assoc.event_type)
        _check_association(index, stage, assoc, hooks, default_isolation)
        isolation = _isolation(assoc.isolation or default_isolation)
        source = _source(index, assoc, base_dir)
        hooks[stage] = Hook(
            stage=stage,
            handler=load_function(source, isolation, base_dir, loaded, init_timeout),
            timeout_s=timeout_for(stage, assoc.timeout),
            include_body=assoc.include_body,
            isolation=isolation,
            concurrency=concurrency,
        )
    return hooks


@dataclass(frozen=True, slots=True)
class Source:
    """Where a function's code is: the spec as written, the file target and function it
    names, its runtime, and Lambda's form resolved (None for a file or module spec)."""

    spec: str
    target: str
    attr: str
    runtime: str | None = None
    lambda_handler: LambdaHandler | None = None


def source_of(
    spec: str, code: str | None, runtime: str | None, base_dir: Path, where: str = ""
) -> Source:
    """The code ``spec`` names: Lambda's form (``index.handler``) in the folder ``code``
    (relative to ``base_dir``), or a file or module spec; ConfigError naming ``where`` for
    a spec and folder that do not go together."""
    if not is_lambda_form(spec):
        if code is not None:
            raise ConfigError([(f"{where}code", CODE_WITH_FILE_SPEC)])
        target, attr = parse_spec(spec)
        return Source(spec, target, attr, runtime)
    if code is None:
        raise ConfigError([(f"{where}handler", needs_code(spec))])
    found = resolve(spec, (base_dir / code).resolve(), runtime)
    return Source(f"{spec} (code: {code})", str(found.file), found.function, runtime, found)


def _source(index: int, assoc: Association, base_dir: Path) -> Source:
    runtime: str | None = getattr(assoc, "handler_runtime", getattr(assoc, "runtime", None))
    code: str | None = getattr(assoc, "handler_code", None)
    where = f"lambda_function_association[{index}]."
    source = source_of(assoc.handler_spec, code, runtime, base_dir, where)
    _check_runtime(where, source)
    return source


def load_function(
    source: Source,
    isolation: Isolation,
    base_dir: Path,
    loaded: Loaded,
    init_timeout: float,
) -> LoadedHandler | FunctionCode:
    """The function ``source`` names, once per distribution and kind: a handler file in
    process isolation is never imported by the edge (its own runtime processes load it);
    thread and inline isolation, and module specs, load it here. A Node.js file always runs
    in its runtime processes (``runtime`` as the association says, else nodejs20.x)."""
    target, attr = source.target, source.attr
    node = is_node_target(target)
    in_container = node or (isolation == "process" and is_file_target(target))
    key = source.spec if in_container else f"in the edge:{source.spec}"
    function = loaded.get(key)
    if function is None:
        if in_container:
            node_runtime = (source.runtime or DEFAULT_RUNTIME) if node else None
            function = function_code(
                source.spec,
                target,
                attr,
                base_dir,
                init_timeout,
                node_runtime,
                source.lambda_handler,
            )
        else:
            spec = source.spec if source.lambda_handler is None else f"{target}:{attr}"
            function = load_handler(spec, base_dir, init_timeout)
        loaded[key] = function
    return function


def _check_runtime(where: str, source: Source) -> None:
    """The association's runtime, if it names one (a Node.js one warned about when newer
    than the installed node); ConfigError for one whose language is not the file's."""
    runtime = source.runtime
    if runtime is None:
        return
    if runtime not in RUNTIMES:
        raise ConfigError([(f"{where}runtime", f"must be one of {', '.join(RUNTIMES)}")])
    node = is_node_target(source.target)
    if node != (language_of(runtime) == "node"):
        files = ".js, .mjs or .cjs" if language_of(runtime) == "node" else ".py"
        raise ConfigError([(f"{where}runtime", f"{runtime} runs {files} handler files")])
    if node:
        check_runtime(runtime)


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
    if assoc.include_body and not may_include_body(stage):
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


async def _body_shown(stage: Stage, request: EdgeRequest) -> EdgeRequest:
    """The request as an include_body event shows it: a streamed viewer body is read as far
    as the stage's cut and one byte more (for ``inputTruncated``), never further; the rest
    stays in the stream for the origin (reference 4.5)."""
    stream = request.body_stream
    if stream is None:
        return request
    cut = body_shown_up_to(stage)
    return replace(request, body=await stream.peek(cut + 1), body_stream=None)
