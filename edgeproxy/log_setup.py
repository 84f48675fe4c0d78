"""Where the logs go (``edge.logs``), set once when ``edgeproxy serve`` (or a worker) starts.

* the access log (logger ``edgeproxy.access``, one line per exchange: access_log.py) to
  stderr, a file, or nowhere; as a CloudFront standard log (tab separated, after a
  ``#Version``/``#Fields:`` header) or as JSON lines like a real-time log's records;
* the functions' output (loggers ``edgeproxy.handler`` and ``edgeproxy.functions``: REPORT
  lines, tracebacks, console lines; and the runtime processes' stderr: print output) to a
  file of their own when ``edge.logs.functions`` names one.

Everything else goes to stderr with ``--log-level``'s threshold, which the access log
follows too (``--log-level WARNING`` silences it, as before).

The access log does not go through ``logging``'s handlers: a line per request through them
cost as much as the hit itself. Its lines are formatted into a buffer (``AccessLines``)
written out every ``FLUSH_S``, when the buffer fills, and when the log is configured again
or the process exits."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import select
import sys
from pathlib import Path
from typing import TextIO

from edgeproxy.access_log import AccessRecord, header_lines, set_access_writer
from edgeproxy.config.config_model import Config
from edgeproxy.functions.output import runtime_stderr, set_runtime_stderr

ACCESS = logging.getLogger("edgeproxy.access")
FUNCTION_LOGGERS = ("edgeproxy.handler", "edgeproxy.functions")
LINE_FORMAT = "%(asctime)s %(name)s %(message)s"

# Handlers this module installed, removed when it configures again (tests, reloads).
_installed: list[tuple[logging.Logger, logging.Handler]] = []

FLUSH_S = 0.1  # how long an access line may wait in the buffer
FLUSH_LINES = 256  # a full buffer is written at once (a burst stays bounded in memory)
# Lines are written in whole-line pieces of at most PIPE_BUF bytes: a pipe takes such a write
# in one piece, so workers sharing stderr never interleave within a line.
PIECE_BYTES = select.PIPE_BUF


class AccessLines:
    """The access log's lines, buffered: formatted as the record arrives (``str``, or
    ``as_json`` for ``format: json``), written to ``stream`` in batches."""

    def __init__(self, stream: TextIO, form: str, *, owned: bool) -> None:
        self.stream = stream
        self.owned = owned  # a file this opened (closed with it), not stderr
        self.json = form == "json"
        self.lines: list[str] = []
        self.timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, record: AccessRecord) -> None:
        self.lines.append(record.as_json() if self.json else str(record))
        if len(self.lines) >= FLUSH_LINES:
            self.flush()
        elif self.timer is None or self.loop is not _running_loop():
            self._schedule()

    def _schedule(self) -> None:
        loop = _running_loop()
        if loop is None:  # no loop to flush it later: now
            self.flush()
            return
        if self.timer is not None:
            self.timer.cancel()
        self.loop, self.timer = loop, loop.call_later(FLUSH_S, self.flush)

    def flush(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        lines, self.lines = self.lines, []
        try:
            for piece in _pieces(lines):
                self.stream.write(piece)
                self.stream.flush()
        except (OSError, ValueError) as err:  # a full disk, a closed pipe: the edge serves on
            logging.getLogger("edgeproxy.error").warning("access log lines lost: %s", err)

    def close(self) -> None:
        self.flush()
        if self.owned:
            self.stream.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _pieces(lines: list[str]) -> list[str]:
    """The lines joined into whole-line pieces of at most ``PIECE_BYTES`` (a longer line is
    a piece of its own). Access lines are ASCII: URL-encoded or JSON-escaped."""
    pieces: list[str] = []
    piece: list[str] = []
    size = 0
    for line in lines:
        if piece and size + len(line) + 1 > PIECE_BYTES:
            pieces.append("".join(piece))
            piece, size = [], 0
        piece.append(line + "\n")
        size += len(line) + 1
    if piece:
        pieces.append("".join(piece))
    return pieces


_access_lines: AccessLines | None = None


def _flush_at_exit() -> None:
    if _access_lines is not None:
        _access_lines.flush()


atexit.register(_flush_at_exit)


def configure_logs(config: Config, *, header: bool = True) -> None:
    """Point the access and function loggers where ``config.edge.logs`` says. ``header``:
    write the access log's header (False in a worker: its parent wrote it once)."""
    _uninstall()
    settings = config.edge.logs
    _access(config, settings.access.destination, settings.access.format, header)
    if settings.functions is not None:
        _functions(config.path(settings.functions))


def _access(config: Config, destination: str, form: str, header: bool) -> None:
    if destination == "off":
        ACCESS.setLevel(logging.CRITICAL + 1)  # the pipeline then builds no line at all
        ACCESS.propagate = False
        return
    global _access_lines
    ACCESS.setLevel(logging.NOTSET)  # its level still decides whether a line is made
    ACCESS.propagate = False
    if destination == "stderr":
        stream: TextIO = sys.stderr
        fresh, owned = True, False
    else:
        path = config.path(destination)
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        stream, owned = path.open("a", encoding="utf-8"), True
    if form != "json" and header and fresh:  # a file that has lines has its header already
        stream.write(header_lines())
        stream.flush()
    _access_lines = AccessLines(stream, form, owned=owned)
    set_access_writer(_access_lines)


def _functions(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LINE_FORMAT))
    for name in FUNCTION_LOGGERS:
        logger = logging.getLogger(name)
        logger.propagate = False
        _install(logger, handler)
    # Runtime processes write to the same file (appending: their lines interleave whole).
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.set_inheritable(fd, False)  # given to each runtime as its stderr, nothing else
    set_runtime_stderr(fd)


def _install(logger: logging.Logger, handler: logging.Handler) -> None:
    logger.addHandler(handler)
    _installed.append((logger, handler))


def _uninstall() -> None:
    global _access_lines
    if _access_lines is not None:
        set_access_writer(None)
        _access_lines.close()
        _access_lines = None
    for logger, handler in _installed:
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
    _installed.clear()
    ACCESS.setLevel(logging.NOTSET)
    fd = runtime_stderr()
    if fd is not None:
        os.close(fd)
        set_runtime_stderr(None)
