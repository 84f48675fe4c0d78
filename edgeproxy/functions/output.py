"""Where the functions' output goes: what runtime processes write (their stderr: a handler's
print and logging) to the edge's own stderr or the file of ``edge.logs.functions``; and the
REPORT line of each call (``handler_log``) into the buffer ``log_setup`` made for that
destination. Both are chosen once at start (``log_setup.configure_logs``)."""

from __future__ import annotations

from typing import Protocol


class FunctionLines(Protocol):
    """Lines of the function loggers written without ``logging``'s per-record machinery."""

    def line(self, logger: str, message: str) -> None:
        """Write ``message`` as logger ``logger``'s record would be (buffered)."""

    def flush(self) -> None:
        """Write out what waits (before a runtime process writes to the same destination)."""


_runtime_stderr: list[int | None] = [None]
_function_lines: list[FunctionLines | None] = [None]


def runtime_stderr() -> int | None:
    """The file descriptor runtime processes get as stderr; None: the edge's own."""
    return _runtime_stderr[0]


def set_runtime_stderr(fd: int | None) -> None:
    _runtime_stderr[0] = fd


def function_lines() -> FunctionLines | None:
    """Where REPORT lines go; None (logs not configured: tests, an edge in someone's
    process): through the ``edgeproxy.handler`` logger."""
    return _function_lines[0]


def set_function_lines(lines: FunctionLines | None) -> None:
    _function_lines[0] = lines


def flush_function_lines() -> None:
    """Before a call in a runtime process: what the edge wrote first is written first."""
    lines = _function_lines[0]
    if lines is not None:
        lines.flush()
