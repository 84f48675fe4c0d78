"""What a handler call logs (logger ``edgeproxy.handler``), as Lambda writes to CloudWatch:
one ``REPORT`` line per call that ran, the user's traceback trimmed to their frames when it
raises, Lambda's own words for a timeout, the rule a result broke. Each error helper returns
the viewer-facing error the pipeline renders (and logs)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeproxy.errors import (
    HandlerExecutionError,
    HandlerThrottled,
    HandlerTimeout,
    HandlerValidationError,
)
from edgeproxy.functions.concurrency import Throttled
from edgeproxy.functions.isolation import LambdaContext, detail_of, peak_memory_mb
from edgeproxy.functions.output import function_lines
from edgeproxy.functions.protocol import WorkerFailure
from edgeproxy.functions.user_traceback import format_user_traceback
from edgeproxy.functions.validation import RuleBroken

if TYPE_CHECKING:
    from edgeproxy.functions.hook import Hook
    from edgeproxy.functions.trace import StageTrace

log = logging.getLogger("edgeproxy.handler")


@dataclass(slots=True)
class CallRecord:
    """One invocation's bookkeeping for its REPORT line."""

    context: LambdaContext
    start: float
    init_ms: float | None = None
    memory_mb: int | None = None


def validated(hook: Hook, validate: Callable[..., bool], *args: Any) -> bool:
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


def execution_error(
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


def timeout_error(hook: Hook, context: LambdaContext) -> HandlerTimeout:
    # Lambda's own wording; a thread still running the handler is stopped (functions/isolation.py).
    detail = f"Task timed out after {hook.timeout_s:.2f} seconds"
    log.error(
        "%s %s (RequestId: %s) %s",
        hook.stage.value,
        hook.handler.name,
        context.aws_request_id,
        detail,
    )
    return HandlerTimeout(detail, stage=hook.stage.value, handler=hook.handler.name)


def throttled_error(hook: Hook, throttled: Throttled) -> HandlerThrottled:
    # A throttled call never ran: nothing in the function's log (no RequestId, no REPORT),
    # as with Lambda; the edge's error line for the request says it was throttled.
    return HandlerThrottled(str(throttled), stage=hook.stage.value, handler=hook.handler.name)


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


def report(hook: Hook, call: CallRecord, trace: StageTrace | None = None) -> None:
    """Lambda's REPORT line, when ``edgeproxy.handler`` logs at INFO, and its figures into
    ``trace`` (read once for both); Max Memory Used is the peak resident memory of the
    process the handler ran in (the worker, or the edge itself for in-process isolation).

    With the logs configured the line goes into their buffer (``output.function_lines``),
    without ``logging``'s per-record work; otherwise through the logger."""
    logged = log.isEnabledFor(logging.INFO)
    if not logged and trace is None:
        return
    fields = report_fields(call)
    if trace is not None:
        trace.report = fields
    if not logged:
        return
    init = fields["init_duration_ms"]
    line = (
        f"REPORT RequestId: {fields['request_id']} Duration: {fields['duration_ms']:.2f} ms "
        f"Billed Duration: {fields['billed_duration_ms']} ms "
        f"Memory Size: {fields['memory_size_mb']} MB "
        f"Max Memory Used: {fields['max_memory_used_mb']} MB"
        + ("" if init is None else f" Init Duration: {init:.2f} ms")
    )
    lines = function_lines()
    if lines is not None:
        lines.line(log.name, line)
    else:
        log.info("%s", line, extra={"stage": hook.stage.value, "handler": hook.handler.name})


def report_fields(call: CallRecord) -> dict[str, Any]:
    """The figures of a call's REPORT line (the line and the exchange record read them)."""
    duration_ms = (time.perf_counter() - call.start) * 1000 - (call.init_ms or 0.0)
    return {
        "request_id": call.context.aws_request_id,
        "duration_ms": round(duration_ms, 2),
        "billed_duration_ms": max(1, math.ceil(duration_ms)),  # Lambda bills at least 1 ms
        "memory_size_mb": int(call.context.memory_limit_in_mb),
        "max_memory_used_mb": call.memory_mb if call.memory_mb is not None else peak_memory_mb(),
        "init_duration_ms": None if call.init_ms is None else round(call.init_ms, 2),
    }
