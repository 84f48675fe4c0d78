"""Instructions per request on the everyday paths, counted by callgrind (deterministic where
wall-clock time on a shared machine is not).

    .venv/bin/python -m bench.instructions [--requests 300] [--paths hit,hit-log,...]
    .venv/bin/python -m bench.instructions --wall [--requests 3000] [--repeats 5]

For each path, an edge process (``edgeproxy serve``'s edge: ``running_edge`` with
``configure_logs``, the config of ``make bench``, its ``/full/*`` included) runs under
``valgrind --tool=callgrind``; the viewer (this process, not counted) warms the path up,
has the edge zero its counters (SIGUSR1: the edge calls ``getloadavg``, which callgrind's
``--zero-before`` watches), sends ``--requests`` sequential GETs on one keep-alive connection,
then has it dump them (SIGUSR2: ``getsid``, ``--dump-before``). The dump's total divided by
the requests is what one request costs the edge process: parsing, the flow, the answer's
bytes, the access log; nothing of the viewer's or the origin's.

``--wall`` runs the same edges without valgrind and measures requests per second, the paths
taking turns in every repeat (so a change in the machine's load touches them all alike).

Paths: ``hit`` (1 KB, quick hit path, access log off), ``hit-log`` (the same with the default
access log: CloudFront format to stderr, here a file), ``full`` (a hit on the full flow with
no function: a CloudFront-* header named), ``noop-inline`` (a hit with no-op viewer-request
and viewer-response functions, inline), ``noop-python`` (the same functions in Lambda's form,
in runtime processes: the edge's share of the calls), ``miss`` (1 KB, every request a new
URL, through ``bench/origin.py`` on loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.client import read_answer, request_bytes
from bench.procs import HOST, free_port

REPO = Path(__file__).resolve().parent.parent
BENCH_YAML = REPO / "bench" / "config" / "bench.yaml"
ZERO, DUMP = "getloadavg", "getsid"  # libc calls nothing else in the edge makes


@dataclass(frozen=True)
class PathCase:
    prefix: str  # the URL before the per-request name
    log: bool  # the default access log on
    unique: bool = False  # a new URL per request (a miss)


PATHS = {
    "hit": PathCase("/plain/1024/0/", False),
    "hit-log": PathCase("/plain/1024/0/", True),
    "full": PathCase("/full/1024/0/", False),
    "noop-inline": PathCase("/noop-inline/1024/0/", False),
    # the default isolation: Lambda's form in a runtime process (the process's own work is
    # not counted, only what a call costs the edge)
    "noop-python": PathCase("/noop-python/1024/0/", False),
    "miss": PathCase("/miss/1024/0/", False, unique=True),
}


def config_document(origin_port: int, access_log: bool, log_file: Path) -> dict[str, Any]:
    """``bench/config/bench.yaml`` on ``origin_port``, function paths absolute, the access
    log on or off."""
    document: dict[str, Any] = yaml.safe_load(BENCH_YAML.read_text())
    dist = document["distribution"]
    dist["origin"][0]["domain_name"] = HOST
    dist["origin"][0]["custom_origin_config"]["http_port"] = origin_port
    here = BENCH_YAML.parent
    for behavior in dist["ordered_cache_behavior"]:
        for association in behavior.get("lambda_function_association", []):
            if "code" in association:  # Lambda's form: index.handler in a folder
                association["code"] = str((here / association["code"]).resolve())
                continue
            file, _, name = association["handler"].partition(":")
            association["handler"] = f"{(here / file).resolve()}:{name}"
    for function in document["edge"].get("functions", {}).values():
        function["file"] = str((here / function["file"]).resolve())
    document["edge"]["listeners"]["http_port"] = 0
    document["edge"]["admin"] = {"port": 0}
    destination = str(log_file) if access_log else "off"
    document["edge"]["logs"] = {"access": {"destination": destination}}
    return document


# -- the edge process ------------------------------------------------------------------------


def edge_main(config_path: Path, port_file: Path) -> None:
    """Serve until SIGTERM, as ``edgeproxy serve`` does (INFO: the access log's level)."""
    import uvloop

    from edgeproxy.config.loading import load_config
    from edgeproxy.log_setup import configure_logs
    from edgeproxy.runtime import running_edge

    logging.basicConfig(level=logging.INFO)
    config = load_config(config_path).config
    configure_logs(config)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, lambda: _mark(os.getloadavg, "zeroed"))
        loop.add_signal_handler(signal.SIGUSR2, lambda: _mark(lambda: os.getsid(0), "dumped"))
        async with running_edge(config, use_dns=False) as running:
            port_file.write_text(str(running.ports["http"]))
            await stop.wait()

    uvloop.run(serve())


def _mark(call: Any, word: str) -> None:
    call()
    print(word, flush=True)


# -- the viewer ------------------------------------------------------------------------------


async def requests(port: int, case: PathCase, count: int, start: int = 0) -> float:
    """``count`` sequential GETs on one connection; seconds taken."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        began = time.perf_counter()
        for i in range(start, start + count):
            writer.write(request_bytes(case.prefix + (str(i) if case.unique else "x"), port))
            answer = await read_answer(reader)
            if answer.status != 200:
                raise RuntimeError(f"{case.prefix}: {answer}")
        return time.perf_counter() - began
    finally:
        writer.close()


@contextlib.contextmanager
def edge_process(
    folder: Path, origin_port: int, case: PathCase, valgrind: list[str]
) -> Iterator[tuple[subprocess.Popen[str], int]]:
    config = folder / "edge.yaml"
    config.write_text(yaml.safe_dump(config_document(origin_port, case.log, folder / "access.log")))
    port_file = folder / "port"
    port_file.unlink(missing_ok=True)
    command = [
        *valgrind,
        sys.executable,
        "-m",
        "bench.instructions",
        "--edge",
        str(config),
        str(port_file),
    ]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=open(folder / "edge.err", "w"), text=True
    )
    try:
        deadline = time.monotonic() + 600
        while not port_file.exists() or not port_file.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "edge.err").read_text()[-3000:])
            time.sleep(0.2)
        yield process, int(port_file.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _signal_and_wait(process: subprocess.Popen[str], signum: int, word: str) -> None:
    process.send_signal(signum)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != word:
        raise RuntimeError(f"the edge answered {line!r}, not {word!r}")


def count(folder: Path, origin_port: int, name: str, n: int) -> float:
    """Instructions per request of path ``name`` (callgrind's Ir)."""
    case = PATHS[name]
    out = folder / f"callgrind.{name}.out"
    valgrind = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        f"--zero-before={ZERO}",
        f"--dump-before={DUMP}",
        "--dump-instr=no",
    ]
    with edge_process(folder, origin_port, case, valgrind) as (process, port):
        asyncio.run(requests(port, case, 30, start=10**6))  # warm-up: cached, code paths hot
        _signal_and_wait(process, signal.SIGUSR1, "zeroed")
        asyncio.run(requests(port, case, n))
        time.sleep(0.3)  # the access log's flush timer falls inside the count
        _signal_and_wait(process, signal.SIGUSR2, "dumped")
    dumps = sorted(folder.glob(f"callgrind.{name}.out*"), key=lambda p: p.stat().st_mtime)
    dumped = [p for p in dumps if p.name != out.name] or dumps
    text = dumped[0].read_text()
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if match is None:
        raise RuntimeError(f"no total in {dumped[0]}")
    return int(match[1]) / n


def wall(
    folder: Path, origin_port: int, names: list[str], n: int, repeats: int
) -> dict[str, list[float]]:
    """Requests per second per path, the paths' edges running side by side, taking turns."""
    runs: dict[str, list[float]] = {name: [] for name in names}
    with contextlib.ExitStack() as stack:
        ports = {}
        for name in names:
            sub = folder / name
            sub.mkdir(exist_ok=True)
            _, ports[name] = stack.enter_context(edge_process(sub, origin_port, PATHS[name], []))
            asyncio.run(requests(ports[name], PATHS[name], 200, start=10**6))
        offset = 0
        for _ in range(repeats):
            for name in names:
                seconds = asyncio.run(requests(ports[name], PATHS[name], n, start=offset))
                runs[name].append(n / seconds)
            offset += n
    return runs


def _wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def profile(folder: Path, origin_port: int, name: str, n: int) -> str:
    """Where the edge's Python time goes on path ``name``: py-spy samples the edge process
    while ``n`` requests run; the top functions, by own and total time."""
    from bench.profile import parse_collapsed, profile_lines, py_spy

    case, out = PATHS[name], folder / f"pyspy.{name}.txt"
    with edge_process(folder, origin_port, case, []) as (process, port):
        asyncio.run(requests(port, case, 200, start=10**6))
        spy = [str(py_spy()), "record", "--pid", str(process.pid), "--rate", "1000"]
        spy += ["--format", "raw", "--output", str(out)]
        sampler = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attached
        asyncio.run(requests(port, case, n))
        sampler.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
        sampler.wait(timeout=60)
    return "\n".join(profile_lines(parse_collapsed(out.read_text()), 25))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--wall", action="store_true", help="requests/s without valgrind")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="py-spy's top functions")
    parser.add_argument("--edge", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.edge is not None:
        edge_main(*args.edge)
        return
    names = args.paths.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        origin_port = free_port()
        origin = subprocess.Popen(
            [sys.executable, "-m", "bench.origin", "--port", str(origin_port)], cwd=REPO
        )
        try:
            _wait_for_port(origin_port)
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"load average {load}; {args.requests} requests per path")
            if args.wall:
                measured = wall(folder, origin_port, names, args.requests, args.repeats)
                for name, runs in measured.items():
                    print(
                        f"{name:<12} median {statistics.median(runs):8.0f} req/s"
                        f"  min {min(runs):8.0f}  max {max(runs):8.0f}"
                    )
                return
            if args.profile:
                for name in names:
                    print(f"## {name}\n{profile(folder, origin_port, name, args.requests)}")
                return
            for name in names:
                per_request = count(folder, origin_port, name, args.requests)
                print(f"{name:<12} {per_request:>12,.0f} instructions/request", flush=True)
        finally:
            origin.terminate()
            origin.wait()


if __name__ == "__main__":
    main()
