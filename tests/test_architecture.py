"""The map in docs/architecture.md matches the code, and the layering it states holds."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "edgeproxy"
MAP = (ROOT / "docs" / "architecture.md").read_text()

# Layers from the bottom up (docs/architecture.md, "Layering"): a module imports only from
# its own layer or below.
LAYERS: list[tuple[str, ...]] = [
    ("messages", "errors", "stages", "limits", "paths", "wildcards"),
    ("functions", "config", "cache", "viewer", "origin"),
    ("behaviors", "routes", "exchange", "access_log", "metrics", "collapsing", "misses"),
    ("edge_invoke",),  # one function called as the edge would: routes + functions
    ("error_responses", "pipeline"),
    ("server", "admin", "reload", "runtime", "log_setup", "supervisor", "checks", "cli"),
    ("testing",),  # the pytest plugin and its helpers: a user of everything below
    ("__main__", "__init__"),
]
# The core is free of aiohttp: it can be driven without sockets.
CORE = ("pipeline", "misses", "cache", "stages", "collapsing", "exchange")


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def top(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def imported(path: Path) -> list[str]:
    """Modules this file imports at module level or inside functions (absolute names)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def test_every_module_the_map_names_exists():
    named = set(re.findall(r"`((?:[a-z_]+/)?[a-z_]+\.py)`", MAP))
    assert named, "the map names no module"
    missing = sorted(n for n in named if not (PACKAGE / n).exists())
    assert missing == []


def test_every_package_and_top_module_is_on_the_map():
    for path in PACKAGE.iterdir():
        if path.name.startswith("__"):  # the package's face and caches
            continue
        name = path.name if path.is_file() else f"{path.name}/"
        assert name in MAP, f"{name} is not on docs/architecture.md's map"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_never_up(path: Path):
    own = layer(top(path))
    for name in imported(path):
        if name.startswith("edgeproxy."):
            target = name.split(".")[1]
            assert layer(target) <= own, f"{path.name} imports {name} from a higher layer"


def test_only_the_plugin_imports_pytest():
    """pytest is a test dependency: importing edgeproxy must not need it."""
    plugin = PACKAGE / "testing" / "plugin.py"
    importers = [
        str(p.relative_to(PACKAGE))
        for p in modules()
        if p != plugin and any(n.split(".")[0] == "pytest" for n in imported(p))
    ]
    assert importers == []


@pytest.mark.parametrize(
    "path", [p for p in modules() if top(p) in CORE], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_the_core_imports_no_aiohttp(path: Path):
    assert not [n for n in imported(path) if n.split(".")[0] == "aiohttp"]
