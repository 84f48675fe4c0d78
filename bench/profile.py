"""Where a contender's Python time goes under load: py-spy samples the edge while wrk drives
1 KB hits, and the collapsed stacks are summed into the functions that hold the most samples,
by their own time ("self": the sample's innermost frame) and with what they call ("total").

Time spent in C below the innermost Python frame (uvloop's I/O, the HTTP parser, socket
writes) counts as that frame's self time: a loop-runner frame at the top of "self" means C.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .wrk import WrkRun

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# The root frames py-spy adds with --subprocesses: process 12:"<command line>", one per process
# from the sampled one down to the sample's (a worker under the supervisor has two). They hold
# this machine's PIDs and paths, and a command line may hold ";" (multiprocessing's
# spawn_main does), so all of them are cut off before the stack is split into frames.
_PROCESS = re.compile(r'^(?:process \d+:".*?"(?:;|$))+')


@dataclass(frozen=True, slots=True)
class Profile:
    samples: int
    own: Counter[str]  # innermost frame → samples
    total: Counter[str]  # frame anywhere in the stack → samples (once per stack)

    def top(self, counter: Counter[str], count: int) -> list[tuple[str, float]]:
        return [(name, n / self.samples * 100) for name, n in counter.most_common(count)]


def frame_name(frame: str) -> str:
    """``handle (edgeproxy/pipeline.py:120)`` → ``handle (edgeproxy/pipeline.py)``: lines
    of one function are summed."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{match['function']} ({_short(match['file'])})"


def _short(path: str) -> str:
    """Install and checkout prefixes dropped: ``aiohttp/web_protocol.py``,
    ``edgeproxy/pipeline.py``."""
    if "site-packages/" in path:
        return path.rsplit("site-packages/", 1)[1]
    for package in ("edgeproxy", "bench"):
        if f"/{package}/" in path:
            return f"{package}/" + path.rsplit(f"/{package}/", 1)[1]
    return path


def parse_collapsed(text: str) -> Profile:
    """py-spy's ``--format raw`` output: one ``frame;frame;… count`` line per stack."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        stack = _PROCESS.sub("", stack, count=1)
        frames = [frame_name(f) for f in stack.split(";") if f.strip()]
        if not frames:  # a thread caught outside Python code: not the request path
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    return Profile(samples, own, total)


def profile_lines(profile: Profile, count: int = 12) -> list[str]:
    """Markdown: the top functions by own and by total samples."""
    if profile.samples == 0:
        return ["(no samples)"]
    lines = [f"{profile.samples:,} samples.", "", "| self % | function |", "| ---: | --- |"]
    lines += [f"| {pct:.1f} | `{name}` |" for name, pct in profile.top(profile.own, count)]
    lines += ["", "| total % | function |", "| ---: | --- |"]
    lines += [f"| {pct:.1f} | `{name}` |" for name, pct in profile.top(profile.total, count)]
    return lines


def py_spy() -> str | None:
    """The py-spy executable (from the venv's ``bench`` extra), if installed."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_under_load(pid: int, load: WrkRun, cpus: str | None, seconds: int) -> Profile:
    """Sample ``pid`` (and its children) with py-spy for ``seconds`` while ``load`` runs; both
    bounded. ``load`` should last about 2 s longer: py-spy starts once wrk's connections are
    up, and attaching to an edge with runtime processes takes a moment."""
    spy = py_spy()
    if spy is None:
        raise FileNotFoundError("py-spy is not installed (pip install -e '.[bench]')")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "raw.txt"
        cmd = [] if cpus is None else ["taskset", "-c", cpus]
        cmd += [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking"]
        cmd += ["--rate", "250", "--duration", str(max(1, seconds))]
        cmd += ["--format", "raw", "--output", str(out)]
        wrk = subprocess.Popen(load.command(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            subprocess.run(cmd, capture_output=True, timeout=seconds + 30, check=False)
        finally:
            try:
                wrk.wait(timeout=load.duration_s + 30)
            except subprocess.TimeoutExpired:
                wrk.kill()
                wrk.wait()
        return parse_collapsed(out.read_text() if out.exists() else "")
