"""Load the user's Lambda@Edge handlers: "path/file.py:function" or "package.module:function".

A handler file is executed under a module name of its own (``__edgeproxy_handler__.<stem>_<hash
of its path>``, as mitmproxy does for scripts), so two files both called ``index.py`` never
share a module. The module stays alive between calls, so its globals persist like a warm
Lambda container. ``reload_if_changed`` re-executes the file when it changes on disk (a new
module: globals reset, like a new deployment). A file that no longer loads is logged once, with
its file and line, and marks the handler ``broken``: the hook runner answers CloudFront's
function-error status for it until a later save loads again.

Every failure is one ``HandlerLoadError`` naming the file (or module) and, for errors raised
while executing the user's file, the user's traceback with our own and importlib's frames cut.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
import threading
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeproxy.errors import HandlerLoadError

log = logging.getLogger("edgeproxy.loader")

Handler = Callable[..., Any]

MODULE_PREFIX = "__edgeproxy_handler__"


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


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``"target:attr"`` at the last colon; both parts must be non-empty."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise HandlerLoadError(
            f'handler "{spec}" must be in format "path/file.py:function" or '
            '"package.module:function"'
        )
    return target, attr


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _module_name(path: Path) -> str:
    # The hash keeps files with the same stem apart; the stem keeps tracebacks readable.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"{MODULE_PREFIX}.{stem}_{digest}"


def _exec_file(path: Path, name: str) -> types.ModuleType:
    """Execute ``path`` as module ``name``; its directory is importable while it loads."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HandlerLoadError(f"cannot load handler file {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    # Registered before executing: dataclasses and pickling look modules up by name.
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        _restore(name, previous)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise HandlerLoadError(
            f"cannot load handler file {path}:\n{format_user_traceback(exc)}".rstrip()
        ) from exc
    finally:
        _remove_path(str(path.parent))
    return module


def _restore(name: str, previous: types.ModuleType | None) -> None:
    if previous is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = previous


def _remove_path(entry: str) -> None:
    try:
        sys.path.remove(entry)
    except ValueError:  # the user's module removed it itself
        pass


def _import_module(target: str) -> types.ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if _names_spec_module(target, exc.name):
            raise HandlerLoadError(f'cannot import handler module "{target}": {exc}') from exc
        raise HandlerLoadError(
            f'cannot import handler module "{target}":\n{format_user_traceback(exc)}'.rstrip()
        ) from exc
    except Exception as exc:
        raise HandlerLoadError(
            f'cannot import handler module "{target}":\n{format_user_traceback(exc)}'.rstrip()
        ) from exc


def _names_spec_module(target: str, missing: str | None) -> bool:
    """Whether the missing module is the spec's own module (or a parent package of it),
    rather than something the user's module imports."""
    return bool(missing) and (target == missing or target.startswith(f"{missing}."))


def _resolve_attr(module: types.ModuleType, attr: str, where: str) -> Handler:
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise HandlerLoadError(f'{where} has no attribute "{attr}"') from None
    if not callable(obj):
        raise HandlerLoadError(f'"{attr}" in {where} is not callable (it is {type(obj).__name__})')
    handler: Handler = obj
    return handler


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine (functions and objects with async __call__)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - we want __call__ itself, not callable()
    )


FileStamp = tuple[int, int, int]


def file_stamp(path: Path) -> FileStamp:
    """What tells a saved file from the previous version: mtime, size and inode (an editor
    that saves by renaming changes the inode even within one mtime tick)."""
    try:
        st = path.stat()
    except OSError:
        return (-1, -1, -1)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


class LoadedHandler:
    """One handler, loaded: ``function`` is the current callable, replaced on reload;
    ``broken`` is the error of the last save that did not load (None once a save loads)."""

    __slots__ = (
        "name",
        "path",
        "function",
        "is_async",
        "module",
        "broken",
        "_attr",
        "_stamp",
        "_file",
    )

    def __init__(
        self, name: str, path: Path | None, module: types.ModuleType, attr: str, file: bool
    ) -> None:
        self.name = name  # the spec, as written in the config
        self.path = path  # the handler file (for a module spec: the module's file, if any)
        self.module = module
        self._attr = attr
        self._file = file
        self.function: Handler = _resolve_attr(module, attr, self._where)
        self.is_async = is_async_callable(self.function)
        self.broken: HandlerLoadError | None = None
        self._stamp = file_stamp(path) if path else (-1, -1, -1)

    @property
    def from_file(self) -> bool:
        """Loaded from a file path (not imported as a package module)."""
        return self._file

    @property
    def _where(self) -> str:
        return (
            f"handler file {self.path}"
            if self._file
            else f'handler module "{self.module.__name__}"'
        )

    def reload_if_changed(self) -> bool:
        """Reload when the file changed on disk; True when a new function is in place.

        A save that does not load is logged once (file, line, the user's traceback) and
        sets ``broken``; the previous function object stays referenced but the hook runner
        refuses to call it until a later save loads.
        """
        if self.path is None:
            return False
        stamp = file_stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            module = self._reload_module()
            function = _resolve_attr(module, self._attr, self._where)
        except HandlerLoadError as exc:
            self.broken = exc
            log.error(
                "reload of handler %s failed; its stage answers 503 until fixed: %s", self.name, exc
            )
            return False
        self.module, self.function, self.is_async = module, function, is_async_callable(function)
        self.broken = None
        log.info("reloaded handler %s", self.name)
        return True

    def _reload_module(self) -> types.ModuleType:
        if self._file and self.path is not None:
            return _exec_file(self.path, self.module.__name__)
        try:
            return importlib.reload(self.module)
        except Exception as exc:
            raise HandlerLoadError(
                f'cannot reload handler module "{self.module.__name__}":\n'
                f"{format_user_traceback(exc)}".rstrip()
            ) from exc

    def __repr__(self) -> str:
        return f"LoadedHandler({self.name!r})"


def load_handler(spec: str, base_dir: Path) -> LoadedHandler:
    """Load ``spec`` ("path/file.py:function", relative to ``base_dir`` or absolute, or
    "package.module:function"); raises HandlerLoadError naming the file on any failure."""
    target, attr = parse_spec(spec)
    if not _is_file_target(target):
        module = _import_module(target)
        file = getattr(module, "__file__", None)
        return LoadedHandler(spec, Path(file) if file else None, module, attr, file=False)
    path = (base_dir / target).resolve()
    if not path.is_file():
        raise HandlerLoadError(f'handler file not found: {path} (from handler "{spec}")')
    module = _exec_file(path, _module_name(path))
    return LoadedHandler(spec, path, module, attr, file=True)


def runtime_error_detail(err: HandlerLoadError) -> str:
    """How Lambda's Python runtime words a handler that does not load, e.g.
    ``Runtime.UserCodeSyntaxError: Syntax error in module 'index': expected ':' (index.py,
    line 4)``."""
    cause = err.__cause__
    if isinstance(cause, SyntaxError):
        file = Path(cause.filename or "")
        return (
            f"Runtime.UserCodeSyntaxError: Syntax error in module '{file.stem}': {cause.msg} "
            f"({file.name}, line {cause.lineno})"
        )
    first = str(err).splitlines()[0].rstrip(":")
    if cause is None:  # the file is gone or no longer has the function
        return f"Runtime.HandlerNotFound: {first}"
    return f"Runtime.ImportModuleError: {first}: {type(cause).__name__}: {cause}"
