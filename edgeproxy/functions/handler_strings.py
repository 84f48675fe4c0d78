"""Lambda's handler string (``index.handler``) and the function's folder (``code``) → the file
and the function a runtime loads. The one place that reads Lambda's form; everything after it
runs the file exactly as a ``path/file.py:function`` spec.

Lambda splits its handler at the last dot: the module path before it (which may hold ``/``:
``src/app.handler``; a Python module may be dotted: ``pkg.mod.handler`` is ``pkg/mod.py``),
the function after it. The module is looked for in the function's folder the way Lambda's
runtimes look: Python ``<module>.py``; Node.js ``<module>.js``, ``.mjs``, ``.cjs`` — in that
order, the first one found wins, as in Lambda's Node.js runtime (UserFunction.js). A
``runtime`` (``nodejs20.x``, ``python3.12``) makes only its language's files count; without
one, files of both languages are ambiguous and refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edgeproxy.errors import HandlerLoadError
from edgeproxy.functions.node import RUNTIMES as NODE_RUNTIMES
from edgeproxy.functions.node import SUFFIXES as NODE_SUFFIXES

# Python runtimes a function may name; it runs on the edge's own Python whichever it names.
PYTHON_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
RUNTIMES = (*NODE_RUNTIMES, *PYTHON_RUNTIMES)

# module path segments (no "..", no leading "/": the file stays inside the folder) then the
# function's name (a JavaScript identifier may hold "$").
LAMBDA_FORM = re.compile(r"[\w-]+(?:[/.][\w-]+)*\.[A-Za-z_$][\w$]*")

_SUFFIXES: dict[str, tuple[str, ...]] = {"python": (".py",), "node": NODE_SUFFIXES}


CODE_WITH_FILE_SPEC = (
    "goes with Lambda's handler form (handler: index.handler); a file spec "
    "(path/file.py:function) names its file relative to the config's folder, without code"
)


def needs_code(handler: str) -> str:
    """Why Lambda's form without a folder is refused."""
    return (
        f'"{handler}" is Lambda\'s handler form: add code: <function folder> (relative to the '
        "config's folder) to say where its file is, or name the file: path/file.py:function"
    )


def is_lambda_form(handler: str) -> bool:
    """``index.handler`` (Lambda's form) rather than ``file.py:function`` (the edge's)."""
    return ":" not in handler


def language_of(runtime: str | None) -> str | None:
    """``python`` or ``node`` for a runtime name; None for none."""
    if runtime is None:
        return None
    return "node" if runtime.startswith("nodejs") else "python"


@dataclass(frozen=True, slots=True)
class LambdaHandler:
    """A handler as Lambda names it, resolved: the file found in the folder."""

    handler: str  # as written: index.handler (the runtime's _HANDLER)
    folder: Path  # the function's folder: LAMBDA_TASK_ROOT and working directory
    file: Path
    function: str

    @property
    def node(self) -> bool:
        return self.file.suffix in NODE_SUFFIXES


def candidates(handler: str, runtime: str | None) -> tuple[str, ...]:
    """The files (relative to the folder) Lambda would try for ``handler``, in its order."""
    module = handler.rpartition(".")[0]
    names: list[str] = []
    for language, suffixes in _SUFFIXES.items():
        if runtime is not None and language != language_of(runtime):
            continue
        stem = module.replace(".", "/") if language == "python" else module
        names.extend(stem + suffix for suffix in suffixes)
    return tuple(names)


def resolve(handler: str, folder: Path, runtime: str | None = None) -> LambdaHandler:
    """The file and function ``handler`` names in ``folder``; HandlerLoadError naming the
    folder and the files tried when there is none, or the files when both languages fit and
    no ``runtime`` says which."""
    if not LAMBDA_FORM.fullmatch(handler):
        raise HandlerLoadError(
            f'handler "{handler}" must be Lambda\'s "module.function", e.g. index.handler'
        )
    if not folder.is_dir():
        raise HandlerLoadError(f"no such function folder: {folder}")
    tried = candidates(handler, runtime)
    found = [name for name in tried if (folder / name).is_file()]
    if not found:
        raise HandlerLoadError(
            f'no file for handler "{handler}" in {folder}: tried {", ".join(tried)}'
        )
    languages = {"node" if name.endswith(NODE_SUFFIXES) else "python" for name in found}
    if len(languages) > 1:
        raise HandlerLoadError(
            f'handler "{handler}" fits {" and ".join(found)} in {folder}: set runtime '
            "(python3.x or nodejs20.x) to say which"
        )
    return LambdaHandler(handler, folder, folder / found[0], handler.rpartition(".")[2])
