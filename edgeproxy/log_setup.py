"""Where the logs go (``edge.logs``), set once when ``edgeproxy serve`` (or a worker) starts.

* the access log (logger ``edgeproxy.access``, one line per exchange: access_log.py) to
  stderr, a file, or nowhere; as a CloudFront standard log (tab separated, after a
  ``#Version``/``#Fields:`` header) or as JSON lines like a real-time log's records;
* the functions' output (loggers ``edgeproxy.handler`` and ``edgeproxy.functions``: REPORT
  lines, tracebacks, console lines; and the runtime processes' stderr: print output) to a
  file of their own when ``edge.logs.functions`` names one.

Everything else goes to stderr with ``--log-level``'s threshold, which the access log
follows too (``--log-level WARNING`` silences it, as before)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from edgeproxy.access_log import AccessRecord, header_lines
from edgeproxy.config.config_model import Config
from edgeproxy.functions.output import runtime_stderr, set_runtime_stderr

ACCESS = logging.getLogger("edgeproxy.access")
FUNCTION_LOGGERS = ("edgeproxy.handler", "edgeproxy.functions")
LINE_FORMAT = "%(asctime)s %(name)s %(message)s"

# Handlers this module installed, removed when it configures again (tests, reloads).
_installed: list[tuple[logging.Logger, logging.Handler]] = []


class JsonAccessFormatter(logging.Formatter):
    """An access record as one JSON object (``AccessRecord.as_json``)."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[0], AccessRecord):
            return args[0].as_json()
        return super().format(record)


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
    ACCESS.setLevel(logging.NOTSET)
    ACCESS.propagate = False
    if destination == "stderr":
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        fresh = True
    else:
        path = config.path(destination)
        path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not path.exists() or path.stat().st_size == 0
        handler = logging.FileHandler(path, encoding="utf-8")
    if form == "json":
        handler.setFormatter(JsonAccessFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(message)s"))
        if header and fresh:  # a file that has lines has its header already
            _write(handler, header_lines())
    _install(ACCESS, handler)


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


def _write(handler: logging.Handler, text: str) -> None:
    stream: TextIO | None = getattr(handler, "stream", None)
    if stream is not None:
        stream.write(text)
        stream.flush()


def _install(logger: logging.Logger, handler: logging.Handler) -> None:
    logger.addHandler(handler)
    _installed.append((logger, handler))


def _uninstall() -> None:
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
