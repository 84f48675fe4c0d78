"""``python -m bench.soak`` (what ``make soak`` runs): a bounded soak of ``edgeproxy serve``.

1. start the soak origin (bench/soak_origin.py) and ``edgeproxy serve`` as subprocesses on
   free loopback ports (the edge pinned to ``--server-cpus``, the rest to ``--client-cpus``);
2. warm the cache, then measure the peak rate of the mix for ``--peak-seconds``;
3. run the mix (bench/soak_load.py: hits, misses, invalidations, handler errors, origin
   errors) at half that rate for ``--seconds``, printing once per ``--interval`` the
   unexpected statuses, p50/p99 latency, the edge's RSS and its open file descriptors;
4. print the report and write it into ``--doc`` (docs/reliability.md).

Both processes are stopped by their PIDs at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import uvloop
import yaml

from .procs import Proc, free_port, rss_of, start, stopping, wait_for_port
from .soak_load import Load, Window
from .soak_report import Minute, Soak, markdown, replace_section

REPO = Path(__file__).resolve().parent.parent
# aiohttp closes a kept-alive origin connection 5 to 10 s after its last use (keepalive
# 5 s, checked every 5 s): the idle numbers are read once that has happened.
IDLE_WAIT_S = 12.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600, help="soak length (600)")
    parser.add_argument("--peak-seconds", type=float, default=10, help="peak measurement (10)")
    parser.add_argument("--interval", type=float, default=None,
                        help="report every N s (60; shorter soaks: a sixth of them)")
    parser.add_argument("--concurrency", type=int, default=32, help="client connections (32)")
    parser.add_argument("--server-cpus", default="0", help="taskset CPUs of the edge (0)")
    parser.add_argument("--client-cpus", default="1", help="CPUs of the origin and client (1)")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "reliability.md",
                        help="document whose generated section gets the report")
    parser.add_argument("--no-doc", action="store_true", help="print the report only")
    args = parser.parse_args(argv)
    if args.interval is None:
        args.interval = min(60.0, max(5.0, args.seconds / 6))
    return args


def config(origin_port: int, http_port: int, admin_port: int) -> dict[str, object]:
    behavior = {
        "target_origin_id": "soak",
        "viewer_protocol_policy": "allow-all",
        "allowed_methods": ["GET", "HEAD"],
        "cached_methods": ["GET", "HEAD"],
        "forwarded_values": {"query_string": False, "cookies": {"forward": "none"}},
    }
    raises = {
        "event_type": "viewer-request",
        "handler": f"{REPO / 'bench' / 'soak_handlers.py'}:raises",
    }
    return {
        "distribution": {
            "origin": [{
                "origin_id": "soak",
                "domain_name": "127.0.0.1",
                "custom_origin_config": {
                    "http_port": origin_port, "https_port": 443,
                    "origin_protocol_policy": "http-only",
                    "origin_ssl_protocols": ["TLSv1.2"],
                },
            }],
            "default_cache_behavior": behavior,
            "ordered_cache_behavior": [
                {**behavior, "path_pattern": "/lambda-error/*",
                 "lambda_function_association": [raises]},
            ],
        },
        "edge": {
            "listeners": {"host": "127.0.0.1", "http_port": http_port},
            "admin": {"host": "127.0.0.1", "port": admin_port},
        },
    }


def fds_of(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def fd_kinds(pid: int) -> Counter[str]:
    """What the open descriptors are: "socket", "pipe", "anon_inode:[eventfd]", a path…"""
    kinds: Counter[str] = Counter()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                kinds[target.split(":[")[0] if target[:6] in ("socket", "pipe:[") else target] += 1
    return kinds


def say(text: str) -> None:
    print(f"soak: {text}", flush=True)


def start_servers(work: Path, procs: list[Proc], args: argparse.Namespace) -> tuple[Proc, int, int]:
    """The origin and the edge, listening; returns (edge, http port, admin port)."""
    cpus = {"server": args.server_cpus, "client": args.client_cpus} if shutil.which("taskset") \
        else {"server": None, "client": None}
    origin_port, http_port, admin_port = free_port(), free_port(), free_port()
    origin = start("origin", [sys.executable, "-m", "bench.soak_origin", "--port",
                              str(origin_port)], work / "origin.log", cpus["client"], cwd=REPO)
    procs.append(origin)
    wait_for_port(origin, origin_port)
    path = work / "soak.yaml"
    path.write_text(yaml.safe_dump(config(origin_port, http_port, admin_port), sort_keys=False))
    edge = start("edge", [sys.executable, "-m", "edgeproxy.cli", "--log-level", "WARNING",
                          "serve", "--config", str(path)], work / "edge.log", cpus["server"],
                 cwd=REPO)
    procs.append(edge)
    wait_for_port(edge, http_port)
    wait_for_port(edge, admin_port)
    return edge, http_port, admin_port


async def soak(edge_pid: int, http_port: int, admin_port: int, args: argparse.Namespace) -> Soak:
    edge_url, admin_url = f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{admin_port}"
    started_rss, started_fds = rss_of(edge_pid), fds_of(edge_pid)
    before_kinds = fd_kinds(edge_pid)
    async with Load(edge_url, admin_url, args.concurrency) as load:
        await load.warm()
        cpu, wall = time.process_time(), time.monotonic()
        done = await load.run(args.peak_seconds, None)
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
        peak = done / wall
        say(f"peak {peak:,.0f} requests/s (client used {cpu / wall:.0%} of a core); "
            f"soaking at {peak / 2:,.0f}/s for {args.seconds:,.0f} s")
        result = Soak(args.seconds, peak, peak / 2, args.concurrency, cpu / wall,
                      started_rss=started_rss, started_fds=started_fds)
        result.fd_kinds_before = before_kinds
        load.take_window()
        monitor = asyncio.create_task(_monitor(load, edge_pid, args.interval, result))
        try:
            await load.run(args.seconds, peak / 2)
        finally:
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)
        _record(load.take_window(), edge_pid, result)  # the last, partial window
    return result


async def _monitor(load: Load, edge_pid: int, interval: float, result: Soak) -> None:
    while True:
        await asyncio.sleep(interval)
        _record(load.take_window(), edge_pid, result)


def _record(window: Window, edge_pid: int, result: Soak) -> None:
    seconds = time.monotonic() - window.started
    if not window.latencies:
        return
    minute = Minute(
        len(result.minutes) + 1, seconds, len(window.latencies), window.unexpected,
        window.percentile(0.50) * 1000, window.percentile(0.99) * 1000,
        rss_of(edge_pid), fds_of(edge_pid), os.getloadavg()[0],
    )
    result.minutes.append(minute)
    say(minute.line())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edgeproxy-soak-") as tmp, stopping([]) as procs:
        edge, http_port, admin_port = start_servers(Path(tmp), procs, args)
        say(f"edge PID {edge.pid} on :{http_port} (admin :{admin_port}), logs in {tmp}")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            result = runner.run(soak(edge.pid, http_port, admin_port, args))
        time.sleep(IDLE_WAIT_S)
        result.idle_rss, result.idle_fds = rss_of(edge.pid), fds_of(edge.pid)
        new = fd_kinds(edge.pid) - result.fd_kinds_before
        if new:
            result.notes.append(f"descriptors open after the load, not before: {dict(new)}")
        if edge.popen.poll() is not None:
            result.notes.append(f"the edge exited with {edge.popen.returncode} during the soak")
        defects = [line for line in edge.log_tail(100_000).splitlines() if "internal error" in line]
        if defects:
            result.notes.append(f"edge log: {len(defects)} internal errors (defects of the edge)")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    section = markdown(result, when, machine)
    print(section, flush=True)
    if not args.no_doc:
        doc = args.doc.read_text() if args.doc.exists() else "# Reliability\n"
        args.doc.write_text(replace_section(doc, section))
        say(f"report written into {args.doc}")
    return 0 if all(ok for ok, _ in result.verdicts()) else 1


if __name__ == "__main__":
    sys.exit(main())
