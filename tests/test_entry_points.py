"""How a user starts edgeproxy: ``edgeproxy`` and ``python -m edgeproxy`` run the same CLI,
whose ``--help`` says what the tool is, lists every command with one line, and says where
the documentation is; the event loop is uvloop where installed and asyncio's own otherwise,
said once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("serve", "cert", "validate", "demo-origin", "invoke", "events", "invalidate")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    # This tree first on the path, as for the tests themselves (not an installed copy).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)


def console_script() -> str:
    """The ``edgeproxy`` command pip installed beside this interpreter."""
    script = Path(sys.executable).parent / "edgeproxy"
    assert script.exists(), f"edgeproxy is not installed in {script.parent}"
    return str(script)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param((sys.executable, "-m", "edgeproxy"), id="python-m-edgeproxy"),
        pytest.param(("script",), id="edgeproxy"),
    ],
)
def test_help_describes_the_tool(command: tuple[str, ...]):
    argv = (console_script(),) if command == ("script",) else command
    result = run(*argv, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "CloudFront edge location" in text
    assert "Lambda@Edge handlers" in text
    for name in COMMANDS:  # each on a line of its own, with what it does
        assert re.search(rf"^\s+{re.escape(name)}\s+\w", text, re.MULTILINE), name
    assert "docs/" in text and "README.md" in text
    assert "the only place that exits" not in text  # not the module's docstring


def test_python_m_edgeproxy_runs_the_cli():
    result = run(
        sys.executable, "-m", "edgeproxy", "validate", "--config", "config/distribution.yaml"
    )
    assert (result.returncode, result.stdout.strip()) == (0, "config/distribution.yaml: OK")
    refused = run(sys.executable, "-m", "edgeproxy", "validate", "--config", "no/such.yaml")
    assert refused.returncode == 2, refused.stderr


# Runs two loops one after the other and prints the module of each loop's class.
LOOPS = """
import asyncio, logging, sys
{block}
logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
from edgeproxy.runtime import loop_factory, runner

async def which() -> str:
    return type(asyncio.get_running_loop()).__module__

assert loop_factory() is loop_factory()
for _ in range(2):
    with runner() as loops:
        print(loops.run(which()))
"""

MISSING = "uvloop is not installed"


def test_without_uvloop_the_edge_runs_on_asyncio_and_says_so_once():
    # None in sys.modules makes `import uvloop` raise ImportError, as where it is missing.
    code = LOOPS.format(block="sys.modules['uvloop'] = None")
    result = run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["asyncio.unix_events"] * 2
    assert result.stderr.count(MISSING) == 1


def test_with_uvloop_the_edge_runs_on_it_silently():
    result = run(sys.executable, "-c", LOOPS.format(block=""))
    assert result.returncode == 0, result.stderr
    assert [line.split(".")[0] for line in result.stdout.split()] == ["uvloop"] * 2
    assert MISSING not in result.stderr
