"""``python -m bench`` (what ``make bench`` runs): start the origin and every contender on
loopback, measure, print the table and write it into docs/performance.md.

Placement: the servers on ``--server-cpus`` (default CPU 0), wrk, the origin and this harness
on ``--client-cpus`` (default CPU 1). Every server is stopped by its PID when the run ends,
also on error or Ctrl-C; every load run is bounded (wrk -d plus a hard timeout).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from . import report
from .contenders import REPO, BenchEnv, Contender, Running, edgeproxy_supports_workers, launch
from .machine import describe
from .procs import Proc, free_port, start, stopping, wait_for_port
from .profile import py_spy
from .results import Results
from .scenarios import (
    Plan,
    load_cases,
    run_collapse,
    run_load_cases,
    run_memory,
    run_profiles,
    say,
)

TOOLS = ("wrk", "nginx", "varnishd", "taskset", "lscpu")
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"  # nginx and varnishd live here on Debian
PHASES = ("load", "collapse", "memory")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded wrk seconds first (2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; median (3)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--isolations", default="inline,thread",
                        help="handler isolation modes to measure (inline,thread; add process)")
    parser.add_argument("--workers", default="auto",
                        help="edgeproxy worker counts, e.g. 1,2; auto: 1, and 2 when "
                        "`edgeproxy serve` has --workers")
    parser.add_argument("--server-cpus", default="0", help="taskset CPUs of the servers (0)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of wrk and the origin (1)")
    parser.add_argument("--only", default="", help="comma list of load cases and/or phases "
                        "(hit1k, missfast, …, collapse, memory) to run; default all")
    parser.add_argument("--fill", type=int, default=10_000, help="objects for the memory fill")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "performance.md",
                        help="document whose generated section gets the results")
    parser.add_argument("--no-doc", action="store_true", help="print only, write no document")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the py-spy profile of edgeproxy's 1 KB hits")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [tool for tool in TOOLS if _which(tool) is None]
    if missing:
        say(f"bench: missing {', '.join(missing)}; `make bench` installs them (apt-get)")
        return 2
    signal.signal(signal.SIGTERM, _exit_on_signal)  # finally blocks stop the servers
    os.sched_setaffinity(0, _cpu_set(args.client_cpus))
    plan = Plan(args.duration, args.warmup, args.repeats, args.connections,
                args.client_cpus, fill_objects=args.fill)
    isolations = [iso for iso in args.isolations.split(",") if iso]
    contenders = _contenders(args.workers)
    results = Results()
    started = datetime.now(UTC)
    load_before = _loadavg()
    # On tmpfs when there is one: nginx's cache files then live in RAM like the others' caches.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="edgeproxy-bench-", dir=shm) as tmp:
        measure(plan, args, contenders, isolations, Path(tmp), results)
    edges = [c.key for c in contenders if c.kind == "edgeproxy"]
    report.add_overheads(results, [c.key for c in contenders])
    results.notes.append(
        f"load average (1 min) {load_before} at the start, {_loadavg()} at the end: well above "
        "the 2 the benchmark itself makes means other work shared the CPUs and the "
        "figures are noisier (compare the ratios, taken in interleaved repeats)"
    )
    section = render_section(plan, args, contenders, isolations, results, started)
    print(section)
    if args.json is not None:
        args.json.write_text(json.dumps(results.as_json(), indent=1) + "\n")
    if not args.no_doc:
        doc = args.doc.read_text() if args.doc.exists() else "# Performance\n"
        args.doc.write_text(report.replace_generated(doc, section))
        say(f"bench: wrote {args.doc}")
    return 0 if edges else 1


def measure(plan: Plan, args: argparse.Namespace, contenders: list[Contender],
            isolations: list[str], tmp: Path, results: Results) -> None:
    """Origin up; every contender up for the load cases and the collapsing burst; then
    the memory phase with fresh servers. Everything started is stopped on the way out."""
    wanted = {item for item in args.only.split(",") if item}
    cases = [c for c in load_cases(isolations) if not wanted or c.key in wanted]
    origin_port = free_port()
    env = BenchEnv(tmp, origin_port, args.server_cpus,
                   nginx=_which("nginx") or "nginx", varnishd=_which("varnishd") or "varnishd")
    procs: list[Proc] = []
    with stopping(procs):
        origin_cmd = [sys.executable, "-m", "bench.origin", "--port", str(origin_port)]
        procs.append(start("origin", origin_cmd, tmp / "origin.log", args.client_cpus, cwd=REPO))
        wait_for_port(procs[0], origin_port)
        running: list[Running] = []
        try:
            for contender in contenders:
                running.append(launch(contender, env))
                say(f"bench: {contender.key} on port {running[-1].port}, "
                    f"PIDs {running[-1].proc.pids()}")
            if cases:
                run_load_cases(plan, cases, running, origin_port, results)
            if not wanted or "collapse" in wanted:
                run_collapse(plan, running, origin_port, results)
            if not args.no_profile and (not wanted or "profile" in wanted):
                _profile(plan, running, results)
        finally:
            for server in running:
                server.stop()
        if not wanted or "memory" in wanted:
            run_memory(plan, contenders, env, results)


def _profile(plan: Plan, running: list[Running], results: Results) -> None:
    if py_spy() is None:
        results.notes.append("no profile: py-spy is not installed (pip install -e '.[bench]')")
        return
    run_profiles(plan, running, results)


def _contenders(workers: str) -> list[Contender]:
    edgeproxy = REPO / ".venv" / "bin" / "edgeproxy"
    if workers == "auto":
        counts = [1, 2] if edgeproxy_supports_workers(edgeproxy) else [1]
    else:
        counts = [int(n) for n in workers.split(",")]
    edges = [Contender("edgeproxy" if n == 1 else f"edgeproxy-w{n}", "edgeproxy", n)
             for n in counts]
    return [*edges, Contender("nginx", "nginx"), Contender("varnish", "varnish")]


def render_section(plan: Plan, args: argparse.Namespace, contenders: list[Contender],
                   isolations: list[str], results: Results, started: datetime) -> str:
    edges = [c.key for c in contenders if c.kind == "edgeproxy"]
    machine = describe(REPO, REPO / ".venv" / "bin" / "python")
    workers_note = ""
    if args.workers == "auto" and len(edges) == 1:
        workers_note = " `edgeproxy serve` had no `--workers` option in this run, so only N = 1."
    lines = [
        f"## Latest run: {started:%Y-%m-%d %H:%M} UTC",
        "",
        *machine.lines(),
        f"- Command: `python -m bench {' '.join(_argv_summary(args))}` (what `make bench` runs)",
        f"- Placement: servers pinned to CPU {args.server_cpus} (`taskset -c "
        f"{args.server_cpus}`), wrk, the origin and the harness on CPU {args.client_cpus}. "
        "nginx: 1 worker process; Varnish: 1 thread pool "
        "(300-1,000 threads, it needs one per connection); edgeproxy: 1 process "
        "(the `-w2` column: 2 worker processes, both on the same server CPU)." + workers_note,
        f"- Each figure: the median of {plan.repeats} wrk runs of {plan.duration_s} s "
        f"(after a {plan.warmup_s} s unrecorded warm-up), {plan.connections} keep-alive "
        "connections, 1 wrk thread; repeats interleaved across contenders.",
        "",
        *report.table(results, report.rows_for(isolations), edges),
        "",
        "Ratios are edgeproxy's figure divided by nginx's or Varnish's. ↓: lower is better "
        "(a ratio below 1 is then good). *: nginx and Varnish run no handlers; their "
        "plain 1 KB hit figure is shown and used for the ratio. nginx's memory includes "
        "its cache files (on tmpfs, so in RAM).",
        "",
        "### Issue 7 targets (this run)",
        "",
        *report.target_lines(results, edges),
        "",
        "Not measured here: streaming pass-through memory (issue 7's \"flat\" target).",
    ]
    for edge, profile_lines in results.profiles.items():
        lines += ["", f"### Where {edge}'s time goes on 1 KB hits (py-spy, Python frames)", ""]
        lines += [
            "Sampled during one extra wrk run of the 1 KB hit case. \"self\": the innermost "
            "Python frame of a sample (time in C below it, e.g. uvloop's socket I/O, counts "
            "there); \"total\": the function is anywhere on the stack.", "", *profile_lines,
        ]
    if results.notes:
        lines += ["", "### Notes and anomalies of this run", ""]
        lines += [f"- {note}" for note in results.notes]
    lines += ["", "<details><summary>Every sample (per repeat)</summary>", ""]
    lines += [*report.raw_lines(results), "", "</details>"]
    return "\n".join(lines)


def _argv_summary(args: argparse.Namespace) -> list[str]:
    out = [f"--duration {args.duration}", f"--repeats {args.repeats}",
           f"--connections {args.connections}", f"--isolations {args.isolations}",
           f"--workers {args.workers}"]
    if args.only:
        out.append(f"--only {args.only}")
    return out


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except (OSError, IndexError):
        return "unknown"


def _which(tool: str) -> str | None:
    return shutil.which(tool, path=os.environ.get("PATH", "") + os.pathsep + SBIN)


def _cpu_set(spec: str) -> set[int]:
    cpus: set[int] = set()
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
