"""Where the logs go (``edge.logs``), set once when ``edgeproxy serve`` (or a worker) starts.

* the access log (logger ``edgeproxy.access``, one line per exchange: access_log.py) to
  stderr, a file, or nowhere; as a CloudFront standard log (tab separated, after a
  ``#Version``/``#Fields:`` header) or as JSON lines like a real-time log's records;
* the functions' output (loggers ``edgeproxy.handler`` and ``edgeproxy.functions``: REPORT
  lines, tracebacks, console lines; and the runtime processes' stderr: print output) to a
  file of their own when ``edge.logs.functions`` names one.

Everything else goes to stderr with ``--log-level``'s threshold, which the access log
follows too (``--log-level WARNING`` silences it, as before).

Neither the access log nor the REPORT line of each function call goes through ``logging``'s
handlers: a line per request through them cost as much as the hit itself. Their lines are
formatted into a buffer (``BufferedLines``: one per destination, so the access log and the
functions' lines on stderr keep their order) written out every ``FLUSH_S``, when
``FLUSH_LINES`` wait, when the logs are configured again and when the process exits. The
function loggers' other records (tracebacks, console lines, broken rules) go through
``logging`` into the same buffer, and the buffer is written before a runtime process is
given a call, so the file reads in order: a call's own output, then its REPORT line."""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import select
import sys
import time
from pathlib import Path
from typing import TextIO

from edgeproxy.access_log import header_lines, set_access_writer
from edgeproxy.config.config_model import Config
from edgeproxy.functions.output import runtime_stderr, set_function_lines, set_runtime_stderr

ACCESS = logging.getLogger("edgeproxy.access")
FUNCTION_LOGGERS = ("edgeproxy.handler", "edgeproxy.functions")
LINE_FORMAT = "%(asctime)s %(name)s %(message)s"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # logging.Formatter's asctime, before its ",msecs"

# Handlers this module installed, removed when it configures again (tests, reloads).
_installed: list[tuple[logging.Logger, logging.Handler]] = []

FLUSH_S = 0.1  # how long a line may wait in the buffer
FLUSH_LINES = 256  # a full buffer is written at once (a burst stays bounded in memory)
# Lines are written in whole-line pieces of at most PIPE_BUF bytes: a pipe takes such a write
# in one piece, so workers sharing stderr never interleave within a line.
PIECE_BYTES = select.PIPE_BUF


class BufferedLines:
    """Lines for ``stream``, kept in a list and written in batches: ``FLUSH_S`` after the
    first waits, at once when ``FLUSH_LINES`` wait, and on ``flush()`` (configured again,
    exit, a runtime about to write to the same file). ``what`` names them in the warning
    when a write fails."""

    def __init__(self, stream: TextIO, *, owned: bool, what: str) -> None:
        self.stream = stream
        self.owned = owned  # a file this opened (closed with it), not stderr
        self.what = what
        self.lines: list[str] = []
        self.timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, line: str) -> None:
        self.lines.append(line)
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
        if not self.lines:
            return
        lines, self.lines = self.lines, []
        try:
            for piece in _pieces(lines):
                self.stream.write(piece)
                self.stream.flush()
        except (OSError, ValueError) as err:  # a full disk, a closed pipe: the edge serves on
            logging.getLogger("edgeproxy.error").warning("%s lines lost: %s", self.what, err)

    def close(self) -> None:
        self.flush()
        if self.owned:
            self.stream.close()


class FunctionLines:
    """The function loggers' lines, as ``LINE_FORMAT`` would write them, into ``lines``:
    ``handler_log`` hands it the REPORT line of each call (``functions/output.py``)."""

    def __init__(self, lines: BufferedLines) -> None:
        self.lines = lines
        self._second = -1
        self._stamp = ""

    def line(self, logger: str, message: str) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:  # logging.Formatter's asctime, formatted once a second
            self._second, self._stamp = second, time.strftime(TIME_FORMAT, time.localtime(now))
        self.lines(f"{self._stamp},{int((now - second) * 1000):03d} {logger} {message}")

    def flush(self) -> None:
        if self.lines.lines:
            self.lines.flush()


class _IntoLines(logging.Handler):
    """The function loggers' other records (tracebacks, console lines), formatted by
    ``logging`` into the same buffer as the REPORT lines, so the two keep their order."""

    def __init__(self, lines: BufferedLines) -> None:
        super().__init__()
        self.lines = lines
        self.setFormatter(logging.Formatter(LINE_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines(self.format(record))
        except Exception:
            self.handleError(record)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _pieces(lines: list[str]) -> list[str]:
    """The lines joined into whole-line pieces of at most ``PIECE_BYTES`` (a longer line is
    a piece of its own). Access lines are ASCII (URL-encoded or JSON-escaped); a function's
    may not be, and are measured in UTF-8 then."""
    pieces: list[str] = []
    piece: list[str] = []
    size = 0
    for line in lines:
        length = (len(line) if line.isascii() else len(line.encode("utf-8", "replace"))) + 1
        if piece and size + length > PIECE_BYTES:
            pieces.append("".join(piece))
            piece, size = [], 0
        piece.append(line + "\n")
        size += length
    if piece:
        pieces.append("".join(piece))
    return pieces


# The buffers open now (written out at exit); the one for stderr is shared by the access log
# and the functions' lines when both go there, so they keep their order.
_buffers: list[BufferedLines] = []


def _flush_at_exit() -> None:
    for lines in _buffers:
        lines.flush()


atexit.register(_flush_at_exit)


def configure_logs(config: Config, *, header: bool = True) -> None:
    """Point the access and function loggers where ``config.edge.logs`` says. ``header``:
    write the access log's header (False in a worker: its parent wrote it once)."""
    _uninstall()
    settings = config.edge.logs
    _access(config, settings.access.destination, settings.access.format, header)
    _functions(None if settings.functions is None else config.path(settings.functions))


def _access(config: Config, destination: str, form: str, header: bool) -> None:
    if destination == "off":
        ACCESS.setLevel(logging.CRITICAL + 1)  # the pipeline then builds no line at all
        ACCESS.propagate = False
        return
    ACCESS.setLevel(logging.NOTSET)  # its level still decides whether a line is made
    ACCESS.propagate = False
    if destination == "stderr":
        lines, fresh = _stderr_lines(), True
    else:
        path = config.path(destination)
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        lines = _file_lines(path, "access log")
    if form != "json" and header and fresh:  # a file that has lines has its header already
        lines.stream.write(header_lines())
        lines.stream.flush()
    if form == "json":
        set_access_writer(lambda record: lines(record.as_json()))
    else:
        set_access_writer(lambda record: lines(str(record)))


def _functions(path: Path | None) -> None:
    """The function loggers into the file ``path`` (None: stderr, where they went by
    propagating to the root logger, in the root's format ``LINE_FORMAT``)."""
    if path is None:
        lines = _stderr_lines()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = _file_lines(path, "functions log")
        # Runtime processes write to the same file (appending: their lines interleave whole).
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.set_inheritable(fd, False)  # given to each runtime as its stderr, nothing else
        set_runtime_stderr(fd)
    handler = _IntoLines(lines)
    for name in FUNCTION_LOGGERS:
        logger = logging.getLogger(name)
        logger.propagate = False
        _install(logger, handler)
    set_function_lines(FunctionLines(lines))


def _stderr_lines() -> BufferedLines:
    for lines in _buffers:
        if lines.stream is sys.stderr:
            return lines
    lines = BufferedLines(sys.stderr, owned=False, what="log")
    _buffers.append(lines)
    return lines


def _file_lines(path: Path, what: str) -> BufferedLines:
    lines = BufferedLines(path.open("a", encoding="utf-8"), owned=True, what=what)
    _buffers.append(lines)
    return lines


def _install(logger: logging.Logger, handler: logging.Handler) -> None:
    logger.addHandler(handler)
    _installed.append((logger, handler))


def _uninstall() -> None:
    set_access_writer(None)
    set_function_lines(None)
    for lines in _buffers:
        lines.close()
    _buffers.clear()
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
