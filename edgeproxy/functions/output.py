"""Where runtime processes write what a handler prints or logs (their stderr): the edge's
own stderr, or the file of ``edge.logs.functions`` (log_setup.py), chosen once at start."""

from __future__ import annotations

_runtime_stderr: list[int | None] = [None]


def runtime_stderr() -> int | None:
    """The file descriptor runtime processes get as stderr; None: the edge's own."""
    return _runtime_stderr[0]


def set_runtime_stderr(fd: int | None) -> None:
    _runtime_stderr[0] = fd
