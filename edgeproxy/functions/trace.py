"""What one function call saw and returned, kept for the exchange's detail (admin API,
timeline UI): the event in, the result out, its REPORT figures and, for a CloudFront
Function, its console lines. A ``StageTrace`` is filled only when a caller passes one; the
stage's own work never reads it.

The event and result are copied when taken (a handler may change the event it was given in
place). The copy is the value's JSON, made by orjson (a few microseconds, where copying the
dict in Python cost as much as the function call it recorded); it is read back, every string
cut at ``STRING_LIMIT`` characters, only when someone looks at the exchange. A value whose
JSON is over ``JSON_LIMIT`` bytes (a body of a megabyte), or that is not JSON at all, is
copied and cut at once instead. ``size`` is what is kept, for the history's byte bound."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

STRING_LIMIT = 16 * 1024  # characters of one string of an event or result (a body, a header)
LOG_LINES = 100  # console lines of one call
_DEPTH = 12  # deeper nesting than an event has is cut
JSON_LIMIT = 4 * STRING_LIMIT  # bytes of a value's JSON kept as JSON until it is read
# orjson writes some Python types as JSON by itself; those are shown as bounded_copy shows them
_ONLY_JSON = (
    orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


@dataclass(slots=True)
class StageTrace:
    taken_event: Any = None  # bytes: the JSON of the event, read by ``event``
    taken_result: Any = None
    logs: list[str] = field(default_factory=list)
    report: dict[str, Any] | None = None
    size: int = 0

    @property
    def event(self) -> Any:
        return _read(self.taken_event)

    @property
    def result(self) -> Any:
        return _read(self.taken_result)

    def took_event(self, event: Any) -> None:
        self.taken_event = self._copy(event)

    def took_result(self, result: Any) -> None:
        self.taken_result = self._copy(result)

    def took_logs(self, lines: list[str]) -> None:
        kept = [line[:STRING_LIMIT] for line in lines[:LOG_LINES]]
        if len(lines) > LOG_LINES:
            kept.append(f"... {len(lines) - LOG_LINES} more lines")
        self.size += sum(len(line) for line in kept)
        self.logs = kept

    def _copy(self, value: Any) -> Any:
        try:
            taken = orjson.dumps(value, option=_ONLY_JSON)
        except TypeError:  # not JSON (a set, bytes, a number over 64 bits, a key not a str)
            taken = b""
        if not taken or len(taken) > JSON_LIMIT:
            copied, size = bounded_copy(value)
            self.size += size
            return copied
        self.size += len(taken)
        return taken


def _read(taken: Any) -> Any:
    """What a trace shows of a value it took: JSON read back and cut as ``bounded_copy``
    cuts, or the copy already cut when it was taken."""
    if isinstance(taken, bytes):  # bounded_copy never returns bytes: it shows their repr
        return bounded_copy(orjson.loads(taken))[0]
    return taken


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
