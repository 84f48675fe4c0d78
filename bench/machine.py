"""What the numbers were measured on: CPU model and count, kernel, OS, tool and library
versions, and the edgeproxy commit. Every probe has a timeout and degrades to "unknown"."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Machine:
    cpu_model: str
    cpus: int
    kernel: str
    os_name: str
    versions: dict[str, str]  # tool or library → version
    commit: str

    def lines(self) -> list[str]:
        tools = ", ".join(f"{name} {version}" for name, version in self.versions.items())
        return [
            f"- CPU: {self.cpu_model}, {self.cpus} CPUs",
            f"- OS: {self.os_name}, kernel {self.kernel}",
            f"- Versions: {tools}",
            f"- edgeproxy commit: {self.commit}",
        ]


def _output(cmd: list[str], cwd: Path | None = None) -> str:
    """stdout and stderr of ``cmd`` together ('' when it cannot run)."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout + done.stderr


def first_match(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M)
    return match[1] if match else UNKNOWN


def _os_name() -> str:
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        return platform.system()
    return first_match(r'^PRETTY_NAME="?([^"\n]+)', release)


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _commit(repo: Path) -> str:
    commit = _output(["git", "rev-parse", "--short", "HEAD"], cwd=repo).strip() or UNKNOWN
    dirty = _output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo).strip()
    return f"{commit} (with uncommitted changes)" if dirty else commit


def describe(repo: Path, edgeproxy_python: Path) -> Machine:
    """The machine, the contenders' versions, and the libraries of edgeproxy's venv."""
    libs = _output([str(edgeproxy_python), "-c", _LIBS_SCRIPT]).strip()
    versions = {
        "nginx": first_match(r"nginx/(\S+)", _output(["nginx", "-v"])),
        "Varnish": first_match(r"varnish-(\S+)", _output(["varnishd", "-V"])),
        "wrk": first_match(r"^wrk (\S+)", _output(["wrk", "-v"])),
        "Python": first_match(r"^Python (\S+)", _output([str(edgeproxy_python), "--version"])),
    }
    for item in libs.split():
        name, _, version = item.partition("=")
        versions[name] = version
    return Machine(
        cpu_model=first_match(r"^Model name:\s+(.+)$", _output(["lscpu"])),
        cpus=os.cpu_count() or 0,
        kernel=platform.release(),
        os_name=_os_name(),
        versions=versions,
        commit=_commit(repo),
    )


# Run in edgeproxy's interpreter: the versions the edge actually imports.
_LIBS_SCRIPT = """
import importlib.metadata as m
for name in ("aiohttp", "uvloop", "httptools"):
    try:
        print(f"{name}={m.version(name)}")
    except m.PackageNotFoundError:
        pass
"""


