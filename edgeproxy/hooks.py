"""Run a user's handler for a stage, the way Lambda@Edge would.

A ``Hook`` is a stage bound to a loaded handler with its timeout, Include Body flag and
isolation. ``HookRunner.run_request`` / ``run_response`` are the pipeline's entry points: build
the event, call the handler, validate the result, convert it back. What each returns:

* ``run_request`` → the ``EdgeRequest`` to continue with, or an ``EdgeResponse`` the handler
  generated (answer the viewer with it).
* ``run_response`` → the ``EdgeResponse`` to continue with.
* Either raises ``HandlerTimeout`` (503), ``HandlerExecutionError`` (503: the handler raised,
  its worker died, or its file no longer loads) or ``HandlerValidationError`` (502, the result
  broke a rule of ``validation.RULES``) — the pipeline renders them.

``invoke`` is the call alone (event in, raw result out) for ``edgeproxy invoke``. Where the
call runs and how it is stopped at its timeout is ``isolation``'s business.

Before each call the handler file is checked for changes (``LoadedHandler.reload_if_changed``):
a save takes effect on the next request; a save that does not load makes the stage answer
503 until the file loads again. Process workers of a changed handler are retired.

Each call logs one ``REPORT`` line (logger ``edgeproxy.handler``), like Lambda's; a handler
that raises logs its traceback trimmed to the user's frames.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from edgeproxy import events
from edgeproxy.errors import (
    ConfigError,
    HandlerExecutionError,
    HandlerTimeout,
    HandlerValidationError,
)
from edgeproxy.events import EventMeta
from edgeproxy.isolation import (
    FUNCTION_VERSION,
    ISOLATIONS,
    REGION,
    HandlerThreads,
    Isolation,
    LambdaContext,
    Raised,
    call_async,
    call_inline,
    call_sync,
    detail_of,
    peak_memory_mb,
)
from edgeproxy.loader import (
    LoadedHandler,
    format_user_traceback,
    load_handler,
    runtime_error_detail,
)
from edgeproxy.messages import EdgeRequest, EdgeResponse
from edgeproxy.stages import STAGE_RULES, Stage
from edgeproxy.validation import (
    RuleBroken,
    validate_request_result,
    validate_response_result,
)
from edgeproxy.worker_pool import WorkerFailure, WorkerPools

__all__ = ["Hook", "HookRunner", "Isolation", "LambdaContext", "build_hooks"]

log = logging.getLogger("edgeproxy.handler")

DEFAULT_MEMORY_MB = 128  # viewer events are capped at 128 MB; origin events default to it
_VIEWER_STAGES = frozenset({Stage.VIEWER_REQUEST, Stage.VIEWER_RESPONSE})


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

    @property
    def memory_limit_mb(self) -> int | None:
        """A hard memory bound: CloudFront caps viewer events at 128 MB; an origin event's
        memory is whatever the function was given, which the config does not say."""
        return self.memory_mb if self.stage in _VIEWER_STAGES else None

    @property
    def worker_spec(self) -> str:
        """The spec a worker process loads: absolute, so the worker needs no base_dir."""
        handler = self.handler
        if handler.path is None or not handler.from_file:
            return handler.name
        return f"{handler.path}:{handler.name.rpartition(':')[2]}"


@dataclass(slots=True)
class _Call:
    """One invocation's bookkeeping for its REPORT line."""

    context: LambdaContext
    start: float
    init_ms: float | None = None
    memory_mb: int | None = None


class HookRunner:
    """Runs hooks. Owns the handler threads and worker processes; ``close()`` releases them."""

    def __init__(
        self, *, max_threads: int = 64, max_processes: int = 4, reload: bool = True
    ) -> None:
        self._threads = HandlerThreads(max_threads)
        self._workers = WorkerPools(max_processes)  # per handler: each worker a warm container
        self._reload = reload
        # One log stream per runner, like one warm container.
        self._log_stream = f"{time.strftime('%Y/%m/%d')}/[{FUNCTION_VERSION}]{uuid.uuid4().hex}"

    async def run_request(
        self, hook: Hook, request: EdgeRequest, meta: EventMeta, request_id: str
    ) -> EdgeRequest | EdgeResponse:
        """viewer-request / origin-request: the request to go on with, or a generated response."""
        shown = await _body_shown(hook.stage, request) if hook.include_body else request
        event = events.request_event(hook.stage, shown, meta, request_id, hook.include_body)
        result = await self.invoke(hook, event)
        same = _validated(
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
    ) -> EdgeResponse:
        """origin-response / viewer-response: the response to continue with."""
        event = events.response_event(hook.stage, request, response, meta, request_id)
        result = await self.invoke(hook, event)
        same = _validated(hook, validate_response_result, hook.stage, result, response)
        return events.response_from_result(hook.stage, result, response, same)

    async def invoke(self, hook: Hook, event: dict[str, Any]) -> Any:
        """Call the hook's handler with ``event`` under its isolation and timeout; the raw
        result. Raises HandlerTimeout or HandlerExecutionError."""
        await self._refresh(hook)
        call = _Call(
            LambdaContext(hook.function_name, hook.memory_mb, hook.timeout_s, self._log_stream),
            time.perf_counter(),
        )
        try:
            return await self._call(hook, event, call)
        except Raised as raised:
            raise _execution_error(hook, call.context, raised.original) from raised.original
        except TimeoutError as exc:
            raise _timeout(hook, call.context) from exc
        finally:
            _report(hook, call)

    async def close(self) -> None:
        self._threads.close()
        await self._workers.close()

    # --- calling ------------------------------------------------------------------------------

    async def _refresh(self, hook: Hook) -> None:
        """Pick up a saved handler file; refuse to call one whose last save does not load."""
        handler = hook.handler
        if self._reload and handler.reload_if_changed() and hook.isolation == "process":
            await self._workers.retire(hook.worker_spec)
        if handler.broken is not None:
            raise HandlerExecutionError(
                runtime_error_detail(handler.broken), stage=hook.stage.value, handler=handler.name
            )

    async def _call(self, hook: Hook, event: dict[str, Any], call: _Call) -> Any:
        if hook.isolation == "process":
            return await self._in_process(hook, event, call)
        fn, context = hook.handler.function, call.context
        if hook.isolation == "inline" and not hook.handler.is_async:
            return call_inline(fn, event, context, hook.timeout_s)
        # asyncio.timeout, not wait_for: no extra task per call (a third of an async call's
        # cost); it cancels what is awaited at the deadline.
        async with asyncio.timeout(hook.timeout_s) as deadline:
            if hook.handler.is_async:
                result = await call_async(fn, event, context)
            else:
                result = await self._threads.submit(lambda: call_sync(fn, event, context))
        if deadline.expired():  # a handler that swallowed the cancellation: still too late
            raise TimeoutError
        return result

    async def _in_process(self, hook: Hook, event: dict[str, Any], call: _Call) -> Any:
        pool = self._workers.pool(hook.worker_spec)
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
        return json.loads(reply.result_json or "null")


# --- errors and logs ---------------------------------------------------------------------------


def _validated(hook: Hook, validate: Callable[..., bool], *args: Any) -> bool:
    """Whether the result's headers are as sent; logs (and re-raises) a broken rule."""
    try:
        return validate(*args, handler=hook.handler.name)
    except HandlerValidationError as exc:
        rule = exc.rule if isinstance(exc, RuleBroken) else "?"
        log.error(
            "Validation error: %s %s broke rule %s: %s",
            hook.stage.value,
            hook.handler.name,
            rule,
            exc.detail,
        )
        raise


def _execution_error(
    hook: Hook, context: LambdaContext, exc: BaseException
) -> HandlerExecutionError:
    log.error(
        "%s %s (RequestId: %s) raised:\n%s",
        hook.stage.value,
        hook.handler.name,
        context.aws_request_id,
        _Lazy(lambda: _user_traceback(exc)),
    )
    detail = exc.detail if isinstance(exc, WorkerFailure) else detail_of(exc)
    return HandlerExecutionError(detail, stage=hook.stage.value, handler=hook.handler.name)


def _timeout(hook: Hook, context: LambdaContext) -> HandlerTimeout:
    # Lambda's own wording; a thread still running the handler is abandoned (isolation.py).
    detail = f"Task timed out after {hook.timeout_s:.2f} seconds"
    log.error(
        "%s %s (RequestId: %s) %s",
        hook.stage.value,
        hook.handler.name,
        context.aws_request_id,
        detail,
    )
    return HandlerTimeout(detail, stage=hook.stage.value, handler=hook.handler.name)


class _Lazy:
    """A log argument computed only if the record is emitted."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[], str]) -> None:
        self._fn = fn

    def __str__(self) -> str:
        return self._fn()


def _user_traceback(exc: BaseException) -> str:
    if isinstance(exc, WorkerFailure):
        return (exc.traceback or exc.detail).rstrip()
    return format_user_traceback(exc).rstrip()


def _report(hook: Hook, call: _Call) -> None:
    """Lambda's REPORT line; Max Memory Used is the peak resident memory of the process the
    handler ran in (the worker, or the edge itself for in-process isolation)."""
    if not log.isEnabledFor(logging.INFO):
        return
    duration_ms = (time.perf_counter() - call.start) * 1000 - (call.init_ms or 0.0)
    init = f" Init Duration: {call.init_ms:.2f} ms" if call.init_ms is not None else ""
    log.info(
        "REPORT RequestId: %s Duration: %.2f ms Billed Duration: %d ms Memory Size: %s MB "
        "Max Memory Used: %d MB%s",
        call.context.aws_request_id,
        duration_ms,
        max(1, math.ceil(duration_ms)),  # Lambda bills at least 1 ms
        call.context.memory_limit_in_mb,
        call.memory_mb if call.memory_mb is not None else peak_memory_mb(),
        init,
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


async def _body_shown(stage: Stage, request: EdgeRequest) -> EdgeRequest:
    """The request as an include_body event shows it: a streamed viewer body is read as far
    as the stage's cut and one byte more (for ``inputTruncated``), never further; the rest
    stays in the stream for the origin (reference 4.5)."""
    stream = request.body_stream
    if stream is None:
        return request
    cut = STAGE_RULES[stage].body_truncate_at
    return replace(request, body=await stream.peek(cut + 1), body_stream=None)
