"""A user's traceback: what Python prints for an exception raised in a handler or while its
module loads, minus the leading frames that are ours (edgeproxy, the import machinery, the
thread or loop that ran it)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import threading
import traceback
import types
from pathlib import Path


def _dir_of(module: types.ModuleType) -> str:
    return str(Path(module.__file__ or "").resolve().parent)


# Frames from these places are ours, the import machinery's or the runner's, never the user's.
_FOREIGN_PREFIXES = (
    str(Path(__file__).resolve().parent),  # edgeproxy
    "<frozen importlib",
    _dir_of(importlib),
    _dir_of(asyncio),
    _dir_of(concurrent.futures),
    str(Path(threading.__file__ or "").resolve()),
)


def _is_ours(filename: str) -> bool:
    return filename.startswith(_FOREIGN_PREFIXES)


def format_user_traceback(exc: BaseException) -> str:
    """``exc`` formatted like Python does, minus the leading frames that are not the user's.

    Only the leading run of foreign frames is cut: user code calling a library keeps the
    library's frames, which are part of the user's story.
    """
    te = traceback.TracebackException.from_exception(exc)
    frames = list(te.stack)
    first_user = next((i for i, f in enumerate(frames) if not _is_ours(f.filename)), len(frames))
    te.stack = traceback.StackSummary.from_list(frames[first_user:])
    return "".join(te.format())
