"""Processes the benchmark starts: each in its own process group (so a server's children
go with it), pinned with taskset, output to a log file, stopped by PID at the end even on
error. Also: free loopback ports, waiting for a port to accept, and the memory of a group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


class StartError(RuntimeError):
    """A server did not come up; the message ends with the tail of its log."""


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A started process group; ``stop()`` ends the whole group."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    extra_pids: list[int] = field(default_factory=list)  # daemons that left the group

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def pids(self) -> list[int]:
        """Every live process in the group (the server and the children it started)."""
        return sorted(set(group_pids(self.pid)) | {p for p in self.extra_pids if _alive(p)})

    def rss_bytes(self) -> int:
        return sum(rss_of(pid) for pid in self.pids())

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM the group, SIGKILL what is left after ``grace_s``; never raises."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            _signal_group(self.pid, sig)
            for pid in self.extra_pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            try:
                self.popen.wait(timeout=grace_s)
                if not group_pids(self.pid):
                    return
            except subprocess.TimeoutExpired:
                pass


def start(
    name: str, cmd: Sequence[str], log: Path, cpus: str | None, cwd: Path | None = None
) -> Proc:
    """Start ``cmd`` pinned to ``cpus`` in a new session (its own process group)."""
    full = ([] if cpus is None else ["taskset", "-c", cpus]) + list(cmd)
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            full, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=cwd,
        )
    return Proc(name, popen, log)


def wait_for_port(proc: Proc, port: int, timeout_s: float = 30.0) -> None:
    """Return once ``port`` accepts a connection; StartError if the process died or hung."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise StartError(f"{proc.name} exited {proc.popen.returncode}:\n{proc.log_tail()}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise StartError(f"{proc.name} did not listen on {port} in {timeout_s:g} s:\n{proc.log_tail()}")


@contextlib.contextmanager
def stopping(procs: list[Proc]) -> Iterator[list[Proc]]:
    """Whatever is appended to ``procs`` inside the block is stopped when it ends."""
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()


def group_pids(pgid: int) -> list[int]:
    """Live PIDs whose process group is ``pgid`` (read from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _pgid_of(int(entry)) == pgid:
            pids.append(int(entry))
    return pids


def rss_of(pid: int) -> int:
    """Resident set size of one process in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _pgid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # The command name is in parentheses and may hold spaces: split after it.
            fields = stat.read().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int) -> bool:
    return _pgid_of(pid) is not None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
