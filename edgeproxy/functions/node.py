"""The Node.js runtime: which handler files it runs, its command line, and the installed
node's version against the runtime an association names.

A handler file ending in ``.js``, ``.mjs`` or ``.cjs`` runs in a Node.js runtime process per
function (``node_runtime.mjs``, the other side of ``protocol``); the edge never loads it. The
module is loaded with ``import()``, so CommonJS and ES modules (``.mjs``, or ``.js`` under a
package.json with ``"type": "module"``) both work, and node_modules beside it resolve as
node resolves them.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger("edgeproxy.loader")

SUFFIXES = (".js", ".mjs", ".cjs")
RUNTIMES = ("nodejs18.x", "nodejs20.x", "nodejs22.x")
DEFAULT_RUNTIME = "nodejs20.x"
BOOTSTRAP = Path(__file__).resolve().with_name("node_runtime.mjs")


def is_node_target(target: str) -> bool:
    return target.endswith(SUFFIXES)


def node_binary() -> str:
    return shutil.which("node") or "/usr/bin/node"


def node_argv(memory_limit_mb: int | None) -> tuple[str, ...]:
    """The runtime's command line (the memory limit itself reaches the runtime as its LIMIT
    argument, from ``processes.Worker.spawn``). The runtime's watchdog enforces the function's
    memory on the whole process, a Buffer as much as V8's heap (an address-space limit would
    stop V8 from starting: it reserves far more than it uses); V8's heap cap stays only as a
    backstop, well above the limit, so that the watchdog, which answers in Lambda's words,
    acts first. Through setpriv's parent-death signal where there is one: node has no prctl,
    and a handler stuck in a loop never reads the closed pipe that ends an idle runtime when
    the edge dies."""
    heap = (
        ()
        if memory_limit_mb is None
        else (f"--max-old-space-size={heap_backstop_mb(memory_limit_mb)}",)
    )
    setpriv = shutil.which("setpriv")
    die_with_the_edge = (setpriv, "--pdeathsig", "KILL") if setpriv else ()
    return (*die_with_the_edge, node_binary(), *heap, str(BOOTSTRAP))


def heap_backstop_mb(memory_limit_mb: int) -> int:
    """V8's heap cap for a function of ``memory_limit_mb``: a heap this large means the watchdog
    (polling every few ms) did not get the CPU for a long while; V8 then aborts the runtime."""
    return max(2 * memory_limit_mb, memory_limit_mb + 256)


@functools.cache
def installed_major() -> int | None:
    """The installed node's major version; None when there is none."""
    try:
        out = subprocess.run(
            [node_binary(), "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"v(\d+)\.", out.strip())
    return int(match.group(1)) if match else None


@functools.cache
def check_runtime(runtime: str) -> None:
    """Warn once per runtime when it is newer than the installed node (it still runs there)."""
    wanted = int(runtime.removeprefix("nodejs").removesuffix(".x"))
    installed = installed_major()
    if installed is None:
        log.warning("runtime %s: no node is installed (make system installs nodejs)", runtime)
    elif wanted > installed:
        log.warning(
            "runtime %s is newer than the installed node v%d: functions run on node v%d",
            runtime,
            installed,
            installed,
        )
