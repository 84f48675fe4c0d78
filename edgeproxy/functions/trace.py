"""What one function call saw and returned, kept for the exchange's detail (admin API,
timeline UI): the event in, the result out, its REPORT figures and, for a CloudFront
Function, its console lines. A ``StageTrace`` is filled only when a caller passes one; the
stage's own work never reads it.

The event and result are copied when taken (a handler may change the event it was given in
place), every string cut at ``STRING_LIMIT`` characters so a body of a megabyte is not
kept whole; ``size`` is what the copy holds, for the history's byte bound."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STRING_LIMIT = 16 * 1024  # characters of one string of an event or result (a body, a header)
LOG_LINES = 100  # console lines of one call
_DEPTH = 12  # deeper nesting than an event has is cut


@dataclass(slots=True)
class StageTrace:
    event: Any = None
    result: Any = None
    logs: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    size: int = 0

    def took_event(self, event: Any) -> None:
        self.event = self._copy(event)

    def took_result(self, result: Any) -> None:
        self.result = self._copy(result)

    def took_logs(self, lines: list[str]) -> None:
        kept = [line[:STRING_LIMIT] for line in lines[:LOG_LINES]]
        if len(lines) > LOG_LINES:
            kept.append(f"... {len(lines) - LOG_LINES} more lines")
        self.size += sum(len(line) for line in kept)
        self.logs = kept

    def _copy(self, value: Any) -> Any:
        copied, size = bounded_copy(value)
        self.size += size
        return copied


def bounded_copy(value: Any, depth: int = 0) -> tuple[Any, int]:
    """A JSON-like ``value`` copied with every string cut at ``STRING_LIMIT``; and roughly
    how many characters the copy holds."""
    if isinstance(value, str):
        if len(value) <= STRING_LIMIT:
            return value, len(value)
        return f"{value[:STRING_LIMIT]}... [{len(value) - STRING_LIMIT} more characters]", (
            STRING_LIMIT
        )
    if depth >= _DEPTH:
        return "...", 3
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        total = 0
        for key, item in value.items():
            out[str(key)], size = bounded_copy(item, depth + 1)
            total += size + len(str(key))
        return out, total
    if isinstance(value, list | tuple):
        items = [bounded_copy(item, depth + 1) for item in value]
        return [item for item, _ in items], sum(size for _, size in items)
    if value is None or isinstance(value, bool | int | float):
        return value, 8
    return repr(value)[:200], 200  # not JSON: the validation rules refuse it; show what it was
