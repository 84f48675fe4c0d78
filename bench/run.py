"""``python -m bench`` (what ``make bench`` runs): start the origin and every contender on
loopback, measure, print the table and write it into docs/performance.md.

Placement: the servers on ``--server-cpus`` (default CPU 0), wrk, the origin and this harness
on ``--client-cpus`` (default CPU 1); the scale-out pair (1 worker on the server CPU, N workers
on ``--scale-cpus``) has wrk on ``--scale-cpus`` for both of its runs. Every server is stopped
by its PID when the run ends, also on error or Ctrl-C; every load run is bounded (wrk -d plus
a hard timeout).
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
from .contenders import (
    REPO,
    VENV_BIN,
    BenchEnv,
    Contender,
    Running,
    edgeproxy_supports_workers,
    launch,
)
from .machine import describe
from .procs import Proc, free_port, start, stopping, wait_for_port
from .profile import py_spy
from .results import DEFAULT_CONFIG, EDGE, ISOLATIONS, Results
from .scenarios import (
    LoadCase,
    Plan,
    load_cases,
    run_collapse,
    run_load_cases,
    run_memory,
    run_profiles,
    say,
    scale_variant,
)

TOOLS = ("wrk", "nginx", "varnishd", "taskset", "lscpu")
SBIN = "/usr/local/sbin:/usr/sbin:/sbin"  # nginx and varnishd live here on Debian
PHASES = ("collapse", "profile", "memory")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (10)")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded wrk seconds first (2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure; median (3)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--isolations", default=",".join(ISOLATIONS),
                        help="where the no-op and security-headers functions run, a subset of "
                        f"{','.join(ISOLATIONS)} (all)")
    parser.add_argument("--workers", default="auto",
                        help="workers of the scale-out variant (auto: 2 when `edgeproxy serve` "
                        "has --workers; 1: no scale-out pair)")
    parser.add_argument("--server-cpus", default="0", help="taskset CPUs of the servers (0)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of wrk and the origin (1)")
    parser.add_argument("--scale-cpus", default="0-1", help="CPUs of the scale-out variant's "
                        "workers and of wrk for both runs of the scale-out pair (0-1)")
    parser.add_argument("--only", default="", help="comma list of load cases and/or phases "
                        "(hit1k, missfast, …, collapse, memory) to run; default all")
    parser.add_argument("--fill", type=int, default=10_000, help="objects for the memory fill")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "performance.md",
                        help="document whose generated section gets the results")
    parser.add_argument("--no-doc", action="store_true", help="print only, write no document")
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the py-spy profiles of the paths of missed targets")
    args = parser.parse_args(argv)
    unknown = [iso for iso in args.isolations.split(",") if iso and iso not in ISOLATIONS]
    if unknown:
        parser.error(f"--isolations: unknown {', '.join(unknown)} (known: {', '.join(ISOLATIONS)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = [tool for tool in TOOLS if _which(tool) is None]
    if missing:
        say(f"bench: missing {', '.join(missing)}; `make bench` installs them (apt-get)")
        return 2
    signal.signal(signal.SIGTERM, _exit_on_signal)  # finally blocks stop the servers
    os.sched_setaffinity(0, _cpu_set(args.client_cpus))
    plan = Plan(args.duration, args.warmup, args.repeats, args.connections,
                args.client_cpus, fill_objects=args.fill,
                profile_s=min(6, max(2, args.duration)))
    isolations = [iso for iso in args.isolations.split(",") if iso]
    contenders = _contenders(args.workers, args.scale_cpus)
    scale = _scale_out(contenders, args)
    say(_estimate_line(plan, args, contenders, isolations, scale))
    results = Results()
    started = datetime.now(UTC)
    load_before = _loadavg()
    # On tmpfs when there is one: nginx's cache files then live in RAM like the others' caches.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="edgeproxy-bench-", dir=shm) as tmp:
        measure(plan, args, contenders, isolations, Path(tmp), results)
    edges = [c.key for c in contenders if c.kind == "edgeproxy" and not c.variant]
    results.notes.append(
        f"load average (1 min) {load_before} at the start, {_loadavg()} at the end: well above "
        "the 2 the benchmark itself makes means other work shared the CPUs and the "
        "figures are noisier (compare the ratios, taken in interleaved repeats)"
    )
    section = render_section(plan, args, contenders, isolations, results, started, scale)
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
    cases = _cases(args, contenders, isolations)
    wanted = {item for item in args.only.split(",") if item}
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
                report.add_overheads(results, [c.key for c in contenders])
            if not wanted or "collapse" in wanted:
                run_collapse(plan, running, origin_port, results)
            if not args.no_profile and (not wanted or "profile" in wanted):
                targets = report.targets_for(isolations, _scale_out(contenders, args))
                paths = report.profile_paths(report.missed(results, targets))
                _profile(plan, paths, cases, running, results)
        finally:
            for server in running:
                server.stop()
        if not wanted or "memory" in wanted:
            run_memory(plan, contenders, env, results)


def _profile(plan: Plan, paths: list[tuple[str, str]], cases: list[LoadCase],
             running: list[Running], results: Results) -> None:
    if not paths:
        return
    if py_spy() is None:
        results.notes.append("no profile: py-spy is not installed (pip install -e '.[bench]')")
        return
    run_profiles(plan, paths, cases, running, results)


def _cases(args: argparse.Namespace, contenders: list[Contender],
           isolations: list[str]) -> list[LoadCase]:
    wanted = {item for item in args.only.split(",") if item}
    variants = [c for c in contenders if c.variant]
    return [c for c in load_cases(isolations, variants) if not wanted or c.key in wanted]


def _contenders(workers: str, scale_cpus: str = "0-1") -> list[Contender]:
    """The edge, nginx and Varnish (a column each), and the edge's variants: the default
    config (access log on) and, when asked or available, the scale-out workers."""
    if workers == "auto":
        edgeproxy = VENV_BIN / "edgeproxy"
        count = 2 if edgeproxy_supports_workers(edgeproxy) else 1
    else:
        count = int(workers)
    out = [Contender(EDGE, "edgeproxy"), Contender("nginx", "nginx"),
           Contender("varnish", "varnish"),
           Contender(DEFAULT_CONFIG, "edgeproxy", variant=True, access_log=True)]
    if count > 1:
        out.append(scale_variant(count, scale_cpus))
    return out


def _scale_out(contenders: list[Contender], args: argparse.Namespace) -> report.ScaleOut | None:
    wide = [c for c in contenders if c.variant and c.workers > 1]
    if not wide:
        return None
    return report.ScaleOut(wide[0].workers, wide[0].cpus or args.scale_cpus, args.server_cpus)


def _estimate_line(plan: Plan, args: argparse.Namespace, contenders: list[Contender],
                   isolations: list[str], scale: report.ScaleOut | None) -> str:
    """The run's expected length: wrk runs, warm-ups, the phases and at most one profile per
    target with a path (the missed ones are profiled)."""
    wanted = {item for item in args.only.split(",") if item}
    phases = [p for p in PHASES if not wanted or p in wanted]
    if args.no_profile:
        phases = [p for p in phases if p != "profile"]
    cases = _cases(args, contenders, isolations)
    profiles = len(report.profile_paths(report.targets_for(isolations, scale)))
    seconds = plan.estimate_s(cases, contenders, phases, profiles)
    runs = sum(sum(1 for c in contenders if case.runs_on(c)) + case.direct for case in cases)
    return (f"bench: {len(cases)} load cases, {runs} case × server pairs × {plan.repeats} "
            f"repeats × {plan.duration_s} s (+ {plan.warmup_s} s warm-up each), phases "
            f"{', '.join(phases) or 'none'}: estimated at most {seconds / 60:.0f} min")


def render_section(plan: Plan, args: argparse.Namespace, contenders: list[Contender],
                   isolations: list[str], results: Results, started: datetime,
                   scale: report.ScaleOut | None = None) -> str:
    edges = [c.key for c in contenders if c.kind == "edgeproxy" and not c.variant]
    machine = describe(REPO, VENV_BIN / "python")
    targets = report.targets_for(isolations, scale)
    if scale is None:
        workers_note = (" No scale-out pair in this run (`--workers 1`, or `edgeproxy serve` "
                        "had no `--workers`).")
    else:
        workers_note = (
            f" Scale-out pair: 1 worker pinned to CPU {scale.single_cpus} against "
            f"`--workers {scale.workers}` pinned to CPUs {scale.cpus}; for both runs of the "
            f"pair wrk is pinned to CPUs {scale.cpus} (`taskset -c {scale.cpus}`), so on a "
            "2-CPU machine it shares the CPUs with the workers and the pair shows what a "
            "second CPU buys while the load generator takes its part of it.")
    lines = [
        f"## Latest run: {started:%Y-%m-%d %H:%M} UTC",
        "",
        *machine.lines(),
        f"- Command: `python -m bench {' '.join(_argv_summary(args))}` (what `make bench` runs)",
        f"- Placement: servers pinned to CPU {args.server_cpus} (`taskset -c "
        f"{args.server_cpus}`), wrk, the origin and the harness on CPU {args.client_cpus}. "
        "nginx: 1 worker process; Varnish: 1 thread pool "
        "(300-1,000 threads, it needs one per connection); edgeproxy: 1 process, log level "
        "WARNING (no access log), and the default-config row: `edgeproxy serve` as a user "
        "starts it (INFO, the access log on, stderr to a file in the run's temporary "
        "directory)." + workers_note,
        f"- Each figure: the median of {plan.repeats} wrk runs of {plan.duration_s} s "
        f"(after a {plan.warmup_s} s unrecorded warm-up), {plan.connections} keep-alive "
        "connections, 1 wrk thread; repeats interleaved across contenders.",
        "",
        *report.table(results, report.rows_for(isolations, scale), edges),
        "",
        "Ratios are edgeproxy's figure divided by nginx's or Varnish's. ↓: lower is better "
        "(a ratio below 1 is then good). *: nginx and Varnish run no handlers; their "
        "plain 1 KB hit figure is shown and used for the ratio. nginx's memory includes "
        "its cache files (on tmpfs, so in RAM).",
        "",
        "### Issue 17 targets (this run)",
        "",
        *report.target_lines(results, targets),
        "",
        "Ratio: edgeproxy's figure divided by the reference's (the target's bound applies to "
        "it); without a reference the figure itself is compared. The full flow's cost is "
        "10⁶ / the `full1k` rate − 10⁶ / the plain 1 KB hit rate, per repeat. Not measured "
        "here: streaming pass-through memory (issue 7's \"flat\" target; "
        "tests/test_streaming.py checks it).",
    ]
    missed = report.missed(results, targets)
    for path, profile_lines in results.profiles.items():
        case, who = path
        why = "; ".join(t.label for t in missed if t.profile == path)
        lines += ["", f"### Where the time goes: `{case}` on {who} (py-spy, Python frames)", ""]
        lines += [
            f"Missed: {why}. Sampled during one extra wrk run of {plan.profile_s} s of that "
            "case. \"self\": the innermost Python frame of a sample (time in C below it, "
            "e.g. uvloop's socket I/O, counts there); \"total\": the function is anywhere on "
            "the stack. Runtime processes of Python functions are sampled with the edge; "
            "Node.js and CloudFront Function runtimes are not Python and do not show.",
            "", *profile_lines,
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
           f"--workers {args.workers}", f"--scale-cpus {args.scale_cpus}"]
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
