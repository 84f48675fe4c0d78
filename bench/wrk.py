"""wrk: the command line for one bounded load run, and what its ``--latency`` report says.

The parsing is pure (tests/test_bench.py feeds it real wrk reports); ``run_wrk`` is the only
part that starts a process, always with a hard timeout on top of wrk's own ``-d``.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# wrk prints times with the largest unit that keeps the number >= 1, bytes in 1024 steps.
TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # → milliseconds
BYTE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}

_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_TRANSFER = re.compile(r"^Transfer/sec:\s+([\d.]+)([KMGT]?B)", re.M)
_PERCENTILE = re.compile(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_TOTAL = re.compile(r"^\s+(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", re.M)
_SOCKET = re.compile(
    r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", re.M
)


class WrkError(RuntimeError):
    """wrk failed or printed a report without the figures we read."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    bytes_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx/3xx answers plus socket errors of every kind

    @property
    def mib_per_s(self) -> float:
        return self.bytes_per_s / 1024**2


def parse_wrk(report: str) -> WrkResult:
    """The figures of a ``wrk --latency`` report; WrkError names what is missing."""
    rate = _RATE.search(report)
    transfer = _TRANSFER.search(report)
    total = _TOTAL.search(report)
    percentiles = {m[1]: float(m[2]) * TIME_UNITS[m[3]] for m in _PERCENTILE.finditer(report)}
    if rate is None or transfer is None or total is None:
        raise WrkError(f"no Requests/sec, Transfer/sec or total in wrk output:\n{report}")
    if "50" not in percentiles or "99" not in percentiles:
        raise WrkError(f"no latency distribution (was --latency given?):\n{report}")
    non_2xx = _NON_2XX.search(report)
    socket = _SOCKET.search(report)
    errors = int(non_2xx[1]) if non_2xx else 0
    errors += sum(int(n) for n in socket.groups()) if socket else 0
    return WrkResult(
        requests_per_s=float(rate[1]),
        bytes_per_s=float(transfer[1]) * BYTE_UNITS[transfer[2]],
        p50_ms=percentiles["50"],
        p99_ms=percentiles["99"],
        requests=int(total[1]),
        errors=errors,
    )


@dataclass(frozen=True, slots=True)
class WrkRun:
    """One bounded load run: ``connections`` keep-alive connections for ``duration_s``."""

    url: str
    duration_s: int
    connections: int = 50
    threads: int = 1
    script: Path | None = None
    script_args: tuple[str, ...] = ()
    cpus: str | None = None  # taskset CPU list for wrk

    def command(self, wrk: str = "wrk") -> list[str]:
        cmd = [] if self.cpus is None else ["taskset", "-c", self.cpus]
        cmd += [wrk, "--latency", f"-t{self.threads}", f"-c{self.connections}"]
        cmd += [f"-d{self.duration_s}s", "--timeout", "5s"]
        if self.script is not None:
            cmd += ["-s", str(self.script)]
        cmd.append(self.url)
        if self.script_args:
            cmd += ["--", *self.script_args]
        return cmd


def run_wrk(run: WrkRun, wrk: str = "wrk") -> WrkResult:
    """Run wrk once; killed if it outlives its duration by more than 30 s."""
    completed = _run(run.command(wrk), timeout=run.duration_s + 30)
    if completed.returncode != 0:
        raise WrkError(f"wrk exited {completed.returncode}: {completed.stderr.strip()}")
    return parse_wrk(completed.stdout)


def _run(cmd: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
