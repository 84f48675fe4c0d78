"""Load the user's Lambda@Edge handlers: "path/file.py:function" or "package.module:function".

A handler file is executed under a module name of its own (``__edgeproxy_handler__.<stem>_<hash
of its path>``, as mitmproxy does for scripts), so two files both called ``index.py`` never
share a module. The module stays alive between calls, so its globals persist like a warm
Lambda container. ``refresh`` (on the event loop) and ``reload_if_changed`` re-execute the file
when it changes on disk (a new ``Version``: globals reset, like a new deployment); whether it
changed is ``folder_watch.FileWatch``'s answer (inotify: no ``stat`` per call). A file that
no longer loads is logged once, with its file and line, and marks the handler ``broken``: the
hook runner answers CloudFront's function-error status for it until a later save loads again.

A module's top-level code (Lambda's init phase) never runs on the event loop: it runs on a
thread of its own (``run_module_code``) and is given up, and stopped, after ``init_timeout``
(Lambda's 10 s by default). A module that never finishes loading is then a load failure like
any other: the edge refuses to start naming the file, or a hot reload marks it ``broken``.

Every failure is one ``HandlerLoadError`` naming the file (or module) and, for errors raised
while executing the user's file, the user's traceback with our own and importlib's frames cut.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import inspect
import logging
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeproxy.errors import HandlerLoadError
from edgeproxy.functions.folder_watch import FileWatch
from edgeproxy.functions.stopping import Outcome, outcome_of, run_in_thread
from edgeproxy.functions.user_traceback import format_user_traceback

log = logging.getLogger("edgeproxy.loader")

Handler = Callable[..., Any]

MODULE_PREFIX = "__edgeproxy_handler__"

# Lambda's limit for the init phase (loading the function's module); edge.handlers.init_timeout.
INIT_TIMEOUT_S = 10.0


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``"target:attr"`` at the last colon; both parts must be non-empty."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise HandlerLoadError(
            f'handler "{spec}" must be in format "path/file.py:function" or '
            '"package.module:function"'
        )
    return target, attr


def is_file_target(target: str) -> bool:
    return target.endswith((".py", ".js", ".mjs", ".cjs")) or "/" in target or "\\" in target


def _module_name(path: Path) -> str:
    # The hash keeps files with the same stem apart; the stem keeps tracebacks readable.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"{MODULE_PREFIX}.{stem}_{digest}"


def run_module_code(call: Callable[[], Any], init_timeout: float | None, what: str) -> Any:
    """Run a module's top-level code (``call``), Lambda's init phase: on a thread of its own,
    never the event loop's, given up (and stopped) after ``init_timeout`` seconds; None runs
    it here, unbounded (a worker process, which the edge kills at the limit). Raises what it
    raised, or TimeoutError; ``what`` names its thread."""
    outcome: Outcome | None
    if init_timeout is None:
        outcome = outcome_of(call)
    else:
        outcome = run_in_thread(call, init_timeout, f"edgeproxy-init-{what}")
    if outcome is None:
        raise TimeoutError(
            f"its top-level code did not finish within {init_timeout:g} s (the init phase limit)"
        )
    result, error = outcome
    if error is not None:
        raise error
    return result


def _exec_file(path: Path, name: str, init_timeout: float | None) -> types.ModuleType:
    """Execute ``path`` as module ``name``; its directory is importable while it loads."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HandlerLoadError(f"cannot load handler file {path}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader
    previous = sys.modules.get(name)
    # Registered before executing: dataclasses and pickling look modules up by name.
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        run_module_code(lambda: loader.exec_module(module), init_timeout, path.name)
    except BaseException as exc:
        _restore(name, previous, module)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise HandlerLoadError(
            f"cannot load handler file {path}:\n{format_user_traceback(exc)}".rstrip()
        ) from exc
    finally:
        _remove_path(str(path.parent))
    return module


def _restore(name: str, previous: types.ModuleType | None, failed: types.ModuleType) -> None:
    if sys.modules.get(name) is not failed:  # a later load already took the name
        return
    if previous is None:
        sys.modules.pop(name, None)
    else:
        sys.modules[name] = previous


def _remove_path(entry: str) -> None:
    try:
        sys.path.remove(entry)
    except ValueError:  # the user's module removed it itself
        pass


def _import_module(target: str, init_timeout: float | None) -> types.ModuleType:
    try:
        module: types.ModuleType = run_module_code(
            lambda: importlib.import_module(target), init_timeout, target
        )
        return module
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
            obj = getattr(obj, part)  # the user's dotted attribute path in the handler spec
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


@dataclass(frozen=True, slots=True, weakref_slot=True, eq=False)
class Version:
    """One load of a handler's code; each save that loads (or a config reload) makes a new
    one, with fresh globals, as a new deployment would. Compared by identity: it keys the
    function's concurrency slots."""

    module: types.ModuleType
    function: Handler
    is_async: bool


class LoadedHandler:
    """One handler, loaded: ``current`` is the version calls use, replaced on reload;
    ``broken`` is the error of the last save that did not load (None once a save loads)."""

    __slots__ = (
        "name",
        "path",
        "current",
        "broken",
        "init_timeout",
        "_attr",
        "_watch",
        "_file",
        "_reloading",
    )

    def __init__(
        self,
        name: str,
        path: Path | None,
        module: types.ModuleType,
        attr: str,
        file: bool,
        init_timeout: float | None = INIT_TIMEOUT_S,
    ) -> None:
        self.name = name  # the spec, as written in the config
        self.path = path  # the handler file (for a module spec: the module's file, if any)
        self._attr = attr
        self._file = file
        self.init_timeout = init_timeout
        self.current = _version(module, attr, self._where_of(module))
        self.broken: HandlerLoadError | None = None
        # Asked before every call: one read of the edge's inotify descriptor (or a stat of the
        # file where inotify is missing); its first answer (always "changed") is this load's.
        self._watch = FileWatch(path) if path else None
        if self._watch is not None:
            self._watch.changed()
        self._reloading: asyncio.Task[None] | None = None

    @property
    def module(self) -> types.ModuleType:
        return self.current.module

    @property
    def function(self) -> Handler:
        return self.current.function

    @property
    def is_async(self) -> bool:
        return self.current.is_async

    @property
    def from_file(self) -> bool:
        """Loaded from a file path (not imported as a package module)."""
        return self._file

    def _where_of(self, module: types.ModuleType) -> str:
        return f"handler file {self.path}" if self._file else f'handler module "{module.__name__}"'

    def reload_if_changed(self) -> bool:
        """Reload, on this thread, when the file changed on disk; True when a new version is
        in place. (``refresh`` is the event loop's way.)

        A save that does not load is logged once (file, line, the user's traceback) and
        sets ``broken``; the previous version stays referenced but the hook runner refuses
        to call it until a later save loads.
        """
        return self._changed() and self._apply(self._load())

    async def refresh(self) -> None:
        """``reload_if_changed`` without ever running the module's code on the event loop:
        it runs on a thread (``run_module_code``), and every call of this handler arriving
        meanwhile waits for it, so the first request after a save runs the new code while
        other handlers and paths are served as usual."""
        if self._reloading is None:
            if not self._changed():
                return
            self._reloading = asyncio.ensure_future(self._reload_off_loop())
        await asyncio.shield(self._reloading)  # a viewer gone meanwhile stops no reload

    async def _reload_off_loop(self) -> None:
        try:
            self._apply(await asyncio.to_thread(self._load))
        finally:
            self._reloading = None

    def _changed(self) -> bool:
        return self._watch is not None and self._watch.changed()

    def _load(self) -> Version | HandlerLoadError:
        """The new version, or why it does not load; changes nothing the loop reads."""
        try:
            module = self._reload_module()
            return _version(module, self._attr, self._where_of(module))
        except HandlerLoadError as exc:
            return exc

    def _apply(self, loaded: Version | HandlerLoadError) -> bool:
        if isinstance(loaded, HandlerLoadError):
            self.broken = loaded
            log.error(
                "reload of handler %s failed; its stage answers 503 until fixed: %s",
                self.name,
                loaded,
            )
            return False
        self.current, self.broken = loaded, None
        log.info("reloaded handler %s", self.name)
        return True

    def _reload_module(self) -> types.ModuleType:
        module = self.current.module
        if self._file and self.path is not None:
            return _exec_file(self.path, module.__name__, self.init_timeout)
        try:
            reloaded: types.ModuleType = run_module_code(
                lambda: importlib.reload(module), self.init_timeout, module.__name__
            )
            return reloaded
        except Exception as exc:
            raise HandlerLoadError(
                f'cannot reload handler module "{module.__name__}":\n'
                f"{format_user_traceback(exc)}".rstrip()
            ) from exc

    def __repr__(self) -> str:
        return f"LoadedHandler({self.name!r})"


def _version(module: types.ModuleType, attr: str, where: str) -> Version:
    function = _resolve_attr(module, attr, where)
    return Version(module, function, is_async_callable(function))


def load_handler(
    spec: str, base_dir: Path, init_timeout: float | None = INIT_TIMEOUT_S
) -> LoadedHandler:
    """Load ``spec`` ("path/file.py:function", relative to ``base_dir`` or absolute, or
    "package.module:function"); raises HandlerLoadError naming the file on any failure,
    a module whose top-level code runs past ``init_timeout`` included."""
    target, attr = parse_spec(spec)
    if not is_file_target(target):
        module = _import_module(target, init_timeout)
        file = getattr(module, "__file__", None)  # namespace and built-in modules have none
        return LoadedHandler(spec, Path(file) if file else None, module, attr, False, init_timeout)
    path = (base_dir / target).resolve()
    if not path.is_file():
        raise HandlerLoadError(f'handler file not found: {path} (from handler "{spec}")')
    module = _exec_file(path, _module_name(path), init_timeout)
    return LoadedHandler(spec, path, module, attr, True, init_timeout)


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
