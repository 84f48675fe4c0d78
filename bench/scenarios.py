"""What is measured, as tables: the wrk load cases, the collapsing burst and the memory fill.

Paths follow the bench origin's grammar ``/<group>/<size>/<delay_ms>/<name>`` (bench/origin.py);
``group`` also picks the edge's cache behavior (``/noop-inline/*`` …, bench/config/bench.yaml).
Every case runs for every contender of its kinds and for the edge variants it names (the
default config with the access log on, the scale-out workers), repeats interleaved (repeat 1
of every contender, then repeat 2 …) so a slow drift of the machine spreads over all of them.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import client, profile
from .contenders import BenchEnv, Contender, Running, launch
from .results import ORIGIN, Results, workers_key
from .wrk import WrkError, WrkResult, WrkRun, run_wrk

UNIQUE_SCRIPT = Path(__file__).resolve().parent / "lua" / "unique.lua"
ALL_KINDS = frozenset({"edgeproxy", "nginx", "varnish"})
EDGE_ONLY = frozenset({"edgeproxy"})
KIB, MIB = 1024, 1024**2


@dataclass(frozen=True, slots=True)
class LoadCase:
    """One wrk measurement: ``key`` prefixes its metrics (``hit1k.rps``, ``hit1k.p99`` …)."""

    key: str
    group: str
    size: int
    delay_ms: int = 0
    unique: bool = False  # every request a new URL (a miss)
    kinds: frozenset[str] = ALL_KINDS
    direct: bool = False  # also measured against the origin itself
    variants: frozenset[str] = frozenset()  # edge variants (Contender.variant) that run it too
    client_cpus: str | None = None  # wrk's CPUs for this case instead of Plan.client_cpus

    def runs_on(self, contender: Contender) -> bool:
        if contender.variant:
            return contender.key in self.variants
        return contender.kind in self.kinds

    def path(self, token: str = "") -> str:
        name = f"{token}-" if self.unique else "hit"
        return f"/{self.group}/{self.size}/{self.delay_ms}/{name}"


def load_cases(isolations: Sequence[str], variants: Sequence[Contender] = ()) -> list[LoadCase]:
    """The wrk cases: plain hits and misses for every contender; the function cases per
    isolation on the edge; the default-config variant beside the 1 KB hits; and the scale-out
    pair (1 worker on the edge's CPU, N workers on their own CPUs), wrk on the variant's CPUs
    for both runs of the pair."""
    logged = frozenset(v.key for v in variants if v.access_log)
    scaled = [v for v in variants if v.workers > 1]
    cases = [
        LoadCase("hit1k", "plain", KIB, variants=logged),
        LoadCase("hit16k", "plain", 16 * KIB),
        LoadCase("hit1m", "plain", MIB),
        # the full flow without a function: a behavior that names a CloudFront-* header
        LoadCase("full1k", "full", KIB, kinds=EDGE_ONLY),
        LoadCase("missfast", "miss", KIB, unique=True),
        LoadCase("miss20", "miss", KIB, delay_ms=20, unique=True, direct=True),
    ]
    cases += [LoadCase(f"noop-{iso}", f"noop-{iso}", KIB, kinds=EDGE_ONLY) for iso in isolations]
    cases += [LoadCase(f"sec-{iso}", f"sec-{iso}", KIB, kinds=EDGE_ONLY) for iso in isolations]
    if scaled:
        cases.append(LoadCase("scale", "plain", KIB, kinds=EDGE_ONLY,
                              variants=frozenset(v.key for v in scaled),
                              client_cpus=scaled[0].cpus))
    return cases


def scale_variant(workers: int, cpus: str) -> Contender:
    return Contender(workers_key(workers), "edgeproxy", workers, variant=True, cpus=cpus)


@dataclass(frozen=True, slots=True)
class Plan:
    duration_s: int = 10
    warmup_s: int = 2
    repeats: int = 3
    connections: int = 50
    client_cpus: str | None = "1"
    collapse_viewers: int = 200
    collapse_delay_ms: int = 500  # the origin holds the first request this long
    fill_objects: int = 10_000
    fill_size: int = 16 * KIB
    profile_s: int = 6  # each py-spy profile of a missed target's path

    def estimate_s(self, cases: Sequence[LoadCase], contenders: Sequence[Contender],
                   phases: Sequence[str], profiles: int) -> float:
        """Seconds the run should take: every wrk run, warm-up and phase, plus start-up."""
        seconds = 0.0
        for case in cases:
            runs = sum(1 for c in contenders if case.runs_on(c)) + (1 if case.direct else 0)
            seconds += runs * (self.warmup_s + self.repeats * self.duration_s + 0.5)
        main = [c for c in contenders if not c.variant]
        if "collapse" in phases:
            seconds += self.repeats * len(main) * (self.collapse_delay_ms / 1000 + 0.5)
        if "profile" in phases:
            seconds += profiles * (self.profile_s + 3)
        if "memory" in phases:  # a start, 2 s of settling, the fill (about 2,500 objects/s)
            seconds += self.repeats * len(main) * (4 + self.fill_objects / 2500)
        return seconds + 5 * len(contenders)  # start-up and stop of the long-lived servers


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def record(results: Results, case: LoadCase, who: str, result: WrkResult) -> None:
    if result.requests == 0:  # nothing answered in the run: no figure, and say so
        results.notes.append(f"{case.key}: no request of {who} completed in a run")
        return
    results.add(f"{case.key}.rps", who, result.requests_per_s)
    results.add(f"{case.key}.p50", who, result.p50_ms)
    results.add(f"{case.key}.p99", who, result.p99_ms)
    results.add(f"{case.key}.mibps", who, result.mib_per_s)
    if result.errors:
        results.notes.append(f"{case.key}: {result.errors} errors/non-2xx answers for {who}")


def run_load_cases(
    plan: Plan, cases: Sequence[LoadCase], running: Sequence[Running], origin_port: int,
    results: Results,
) -> None:
    for case in cases:
        targets = [(r.contender.key, r.port) for r in running if case.runs_on(r.contender)]
        if case.direct:
            targets.append((ORIGIN, origin_port))
        for who, port in targets:
            _prepare(plan, case, who, port, results)
        for repeat in range(plan.repeats):
            for who, port in targets:
                try:
                    result = run_wrk(_wrk_run(plan, case, port, plan.duration_s))
                except (WrkError, subprocess.TimeoutExpired) as err:
                    results.notes.append(f"{case.key}: {who} run {repeat + 1} failed: {err}")
                    say(f"[{case.key}] {who} #{repeat + 1}: failed: {err}")
                    continue
                record(results, case, who, result)
                say(f"[{case.key}] {who} #{repeat + 1}: {result.requests_per_s:,.0f} req/s, "
                    f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
                    f"{result.mib_per_s:,.1f} MiB/s, errors {result.errors}")


def _wrk_run(plan: Plan, case: LoadCase, port: int, duration_s: int) -> WrkRun:
    url = f"http://127.0.0.1:{port}"
    cpus = case.client_cpus or plan.client_cpus
    if not case.unique:
        return WrkRun(url + case.path(), duration_s, plan.connections, cpus=cpus)
    prefix = case.path(secrets.token_hex(6))
    return WrkRun(url + "/", duration_s, plan.connections, script=UNIQUE_SCRIPT,
                  script_args=(prefix,), cpus=cpus)


def _prepare(plan: Plan, case: LoadCase, who: str, port: int, results: Results) -> None:
    """A short wrk run that is not recorded (caches fill; connections and allocators warm
    up), then, for a hit case, a check that the object is now served as a hit. The check
    comes after the warm-up: with several workers each has its own cache, and a single GET
    fills only one of them."""
    if plan.warmup_s > 0:
        try:
            run_wrk(_wrk_run(plan, case, port, plan.warmup_s))
        except (WrkError, subprocess.TimeoutExpired) as err:
            results.notes.append(f"{case.key}: {who}: warm-up failed: {err}")
    if not case.unique and who != ORIGIN:
        problem = _hit_problem(port, case.path())
        if problem:
            results.notes.append(f"{case.key}: {who}: {problem}")


def run_profiles(
    plan: Plan, paths: Sequence[tuple[str, str]], cases: Sequence[LoadCase],
    running: Sequence[Running], results: Results,
) -> None:
    """py-spy on the edge server of each (case, server) path while wrk drives that case: one
    extra, unrecorded run of ``plan.profile_s`` seconds each."""
    by_key = {case.key: case for case in cases}
    servers = {server.contender.key: server for server in running}
    for case_key, who in paths:
        case, server = by_key.get(case_key), servers.get(who)
        if case is None or server is None:
            continue
        load = _wrk_run(plan, case, server.port, plan.profile_s + 2)
        found = profile.record_under_load(server.proc.pid, load, load.cpus, plan.profile_s)
        results.profiles[(case_key, who)] = profile.profile_lines(found)
        say(f"[profile] {case_key} on {who}: {found.samples} samples")


def _hit_problem(port: int, path: str) -> str:
    """Why a GET of ``path`` (asked before) is not a cached 200 ('' when it is one)."""
    try:
        answers = [asyncio.run(client.get(port, path)) for _ in range(2)]  # 1st: fill if needed
    except (OSError, TimeoutError, client.ClientError, asyncio.IncompleteReadError) as err:
        return f"cannot fetch {path}: {type(err).__name__}: {err}"
    x_cache = answers[1].headers.get("x-cache", "")
    if answers[1].status == 200 and x_cache.lower().startswith("hit"):
        return ""
    return f"GET of {path} after the warm-up: {answers[1].status}, X-Cache {x_cache!r} (no hit)"


def run_collapse(
    plan: Plan, running: Sequence[Running], origin_port: int, results: Results
) -> None:
    """``collapse_viewers`` simultaneous misses for one key; the origin counts its requests."""
    main = [server for server in running if not server.contender.variant]
    for repeat in range(plan.repeats):
        for server in main:
            path = f"/collapse/{KIB}/{plan.collapse_delay_ms}/{secrets.token_hex(6)}"
            answers = asyncio.run(client.simultaneous(server.port, path, plan.collapse_viewers))
            count = asyncio.run(client.get(origin_port, f"/__count{path}"))
            requests = int(count.body_text)
            results.add("collapse.origin_requests", server.contender.key, requests)
            bad = sum(1 for a in answers if a.status != 200)
            if bad:
                results.notes.append(f"collapse: {bad} non-200 answers from {server.contender.key}")
            say(f"[collapse] {server.contender.key} #{repeat + 1}: {requests} origin request(s)")


def run_memory(
    plan: Plan, contenders: Sequence[Contender], env: BenchEnv, results: Results
) -> None:
    """Per repeat and contender, a fresh server: memory idle, then after caching
    ``fill_objects`` distinct objects of ``fill_size`` bytes."""
    stored = plan.fill_objects * plan.fill_size
    main = [contender for contender in contenders if not contender.variant]
    for repeat in range(plan.repeats):
        for contender in main:
            server = launch(contender, env)
            try:
                time.sleep(1.0)
                idle = server.memory_bytes()
                token = secrets.token_hex(6)
                paths = [f"/fill/{plan.fill_size}/0/{token}-{i}" for i in range(plan.fill_objects)]
                answers = asyncio.run(client.fetch_all(server.port, paths))
                time.sleep(1.0)
                after = server.memory_bytes()
            finally:
                server.stop()
            bad = sum(1 for a in answers if a.status != 200)
            if bad:
                results.notes.append(f"memory: {bad} non-200 answers from {contender.key}")
            results.add("mem.idle", contender.key, idle / MIB)
            results.add("mem.after", contender.key, after / MIB)
            results.add("mem.overhead", contender.key, (after - idle - stored) / stored * 100)
            say(f"[memory] {contender.key} #{repeat + 1}: idle {idle / MIB:.1f} MiB, "
                f"after {after / MIB:.1f} MiB for {stored / MIB:.1f} MiB stored")
