"""Lambda's container model, the edge's side: a function's code as the edge knows it without
ever running it (``FunctionCode``), and the environment its runtime process gets.

A function runs in runtime processes of its own (``processes``): its folder is the working
directory and ``LAMBDA_TASK_ROOT``, first on ``sys.path`` for the life of the process; its
modules are its own; its environment is Lambda's reserved variables and nothing of the
edge's. The edge never imports the user's code: it checks that the handler file exists and
compiles (a start-up refusal names the file, as before), and watches the function's folder:
any file changed under it makes a new ``current`` token, and the function's runtime
processes are replaced (in-flight calls finish on the old ones).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from pathlib import Path

from edgeproxy.errors import HandlerLoadError
from edgeproxy.functions.folder_watch import FolderWatch
from edgeproxy.functions.handler_strings import LambdaHandler
from edgeproxy.functions.isolation import FUNCTION_VERSION, REGION
from edgeproxy.functions.loader import INIT_TIMEOUT_S

log = logging.getLogger("edgeproxy.loader")

class CodeVersion:
    """One state of a function's folder; compared by identity (a new one per change)."""

    __slots__ = ("__weakref__",)


class FunctionCode:
    """A function that runs in its own runtime processes: the edge knows its file, folder
    and handler name, never its module. The same surface as ``LoadedHandler`` for what the
    hook runner reads (``name``, ``path``, ``current``, ``broken``, ``refresh``)."""

    __slots__ = (
        "name",
        "path",
        "attr",
        "folder",
        "handler",
        "init_timeout",
        "runtime",
        "current",
        "broken",
        "_watch",
        "_reloading",
    )

    def __init__(
        self,
        name: str,
        path: Path,
        attr: str,
        init_timeout: float | None,
        runtime: str | None = None,
        folder: Path | None = None,
        handler: str | None = None,
    ) -> None:
        self.name = name  # the spec, as written in the config
        self.path = path
        self.attr = attr
        # The function's folder: the `code` folder of Lambda's form, else the file's.
        self.folder = folder or path.parent
        self.handler = handler or name  # the runtime's _HANDLER: as the config writes it
        self.init_timeout = init_timeout
        self.runtime = runtime  # a Node.js runtime (nodejs20.x); None: Python
        self.current = CodeVersion()
        self.broken: HandlerLoadError | None = None
        self._watch = FolderWatch(self.folder)
        self._reloading: asyncio.Task[None] | None = None

    from_file = True

    @property
    def stem(self) -> str:
        """What names the function (``us-east-1.<stem>``): the folder, for Lambda's form
        (every function there has an index file), else the file's stem."""
        return self.folder.name if self.handler != self.name else self.path.stem

    @property
    def spec(self) -> str:
        """What a runtime process loads: the absolute file and the handler's name."""
        return f"{self.path}:{self.attr}"

    async def refresh(self) -> None:
        """A change under the function's folder makes a new version (its runtime processes
        are then replaced); the handler file is compiled off the loop to answer 503 for a
        save that does not compile, as for an in-process handler."""
        if self._reloading is None:
            if not self._watch.changed():
                return
            self._reloading = asyncio.ensure_future(self._recheck())
        await asyncio.shield(self._reloading)

    async def _recheck(self) -> None:
        try:
            self.broken = await asyncio.to_thread(check_source, self.path, self.name, self.runtime)
            if self.broken is None:
                self.current = CodeVersion()
                log.info("reloaded handler %s", self.name)
            else:
                log.error(
                    "reload of handler %s failed; its stage answers 503 until fixed: %s",
                    self.name,
                    self.broken,
                )
        finally:
            self._reloading = None

    def __repr__(self) -> str:
        return f"FunctionCode({self.name!r})"


def check_source(path: Path, spec: str, runtime: str | None = None) -> HandlerLoadError | None:
    """Why ``path`` cannot be a Python handler (missing, or not compiling), else None; the
    error's cause is the SyntaxError, as ``runtime_error_detail`` expects. A Node.js file is
    only checked to exist: its runtime process reports what does not load."""
    try:
        source = path.read_bytes()
    except OSError:
        return HandlerLoadError(f'handler file not found: {path} (from handler "{spec}")')
    if runtime is not None:
        return None
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        shown = "".join(traceback.format_exception_only(exc)).rstrip()
        error = HandlerLoadError(f"cannot load handler file {path}:\n{shown}")
        error.__cause__ = exc
        return error
    return None


def function_code(
    spec: str,
    target: str,
    attr: str,
    base_dir: Path,
    init_timeout: float | None = INIT_TIMEOUT_S,
    runtime: str | None = None,
    lambda_handler: LambdaHandler | None = None,
) -> FunctionCode:
    """The function ``spec`` names (file ``target``, handler ``attr``, ``runtime`` a Node.js
    one or None for Python; ``lambda_handler`` when named in Lambda's form, whose folder is the
    function's); HandlerLoadError when its file is missing or does not compile, naming the
    file."""
    path = (base_dir / target).resolve()
    broken = check_source(path, spec, runtime)
    if broken is not None:
        raise broken
    if lambda_handler is None:
        return FunctionCode(spec, path, attr, init_timeout, runtime)
    folder, handler = lambda_handler.folder, lambda_handler.handler
    return FunctionCode(spec, path, attr, init_timeout, runtime, folder, handler)


RUNTIME_DIR = Path(__file__).resolve().parents[2]  # holds the edgeproxy package: /var/runtime
PATH = "/usr/local/bin:/usr/bin:/bin"


def python_runtime() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def lambda_environment(
    function_name: str, memory_mb: int, task_root: Path, handler: str, runtime: str
) -> dict[str, str]:
    """The whole environment of a runtime process: Lambda's reserved variables (Lambda@Edge
    allows no others) and nothing of the edge's own environment."""
    return {
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": FUNCTION_VERSION,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(RUNTIME_DIR),
        "_HANDLER": handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": PATH,
        **_runtime_variables(runtime),
    }


def _runtime_variables(runtime: str) -> dict[str, str]:
    if runtime.startswith("nodejs"):
        return {"NODE_OPTIONS": ""}  # the edge's own node options stay the edge's
    return {"PYTHONPATH": str(RUNTIME_DIR)}  # as Lambda's /var/runtime: where the runtime lives
