"""N PoPs × M objects, with and without the regional tier: origin requests, hit ratio, and
what a regional hit adds to an L1 hit.

    .venv/bin/python -m bench.regional [--pops 3] [--objects 200]

Each PoP is an edge in this process (its own cache, listener and ``edge.pop``); with the
regional tier they share a redis-server started here on a free loopback port (stopped by
PID). Every PoP asks for every object once, then once more: without the tier each PoP goes to
the origin for each object; with it only the first PoP does, the others get a regional hit
(an L1 miss, one Redis GET) and then an L1 hit. Latency is per request over one keep-alive
connection, median over the objects; ``make bench`` runs it after the side-by-side table.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import uvloop
import yaml
from aiohttp import web

from bench.client import read_answer, request_bytes
from edgeproxy.config.loading import load_config
from edgeproxy.runtime import running_edge


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(500):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(timeout=10)


def document(origin_port: int, pop: str, redis: str | None) -> dict[str, Any]:
    edge: dict[str, Any] = {
        "listeners": {"host": "127.0.0.1", "http_port": 0},
        "admin": {"port": 0},
        "pop": pop,
    }
    if redis is not None:
        edge["regional_cache"] = {"redis": redis}
    return {
        "distribution": {
            "origin": [
                {
                    "origin_id": "o",
                    "domain_name": "127.0.0.1",
                    "custom_origin_config": {
                        "http_port": origin_port,
                        "origin_protocol_policy": "http-only",
                    },
                }
            ],
            "default_cache_behavior": {
                "target_origin_id": "o",
                "viewer_protocol_policy": "allow-all",
                "allowed_methods": ["GET", "HEAD"],
                "cached_methods": ["GET", "HEAD"],
                "forwarded_values": {"query_string": False, "cookies": {"forward": "none"}},
            },
        },
        "edge": edge,
    }


async def timed_gets(port: int, paths: list[str]) -> list[tuple[str, float]]:
    """(X-Cache, seconds) of each GET, sequential on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for path in paths:
            started = time.perf_counter()
            writer.write(request_bytes(path, port))
            answer = await read_answer(reader)
            out.append((answer.headers.get("x-cache", ""), time.perf_counter() - started))
            if answer.status != 200:
                raise RuntimeError(f"{path}: {answer}")
    finally:
        writer.close()
    return out


async def scenario(
    origin_port: int, pops: int, objects: int, redis: str | None, folder: Path, tag: str
) -> dict[str, float]:
    paths = [f"/{tag}/object-{i}" for i in range(objects)]
    async with AsyncExitStack() as stack:
        ports = []
        for index in range(pops):
            path = folder / f"{tag}-{index}.yaml"
            path.write_text(yaml.safe_dump(document(origin_port, f"POP{index:02d}-C1", redis)))
            config = load_config(path).config
            edge = await stack.enter_async_context(running_edge(config, use_dns=False))
            ports.append(edge.ports["http"])
        first = [await timed_gets(port, paths) for port in ports]  # each PoP, each object
        second = [await timed_gets(port, paths) for port in ports]
    answers = [a for run in (*first, *second) for a in run]
    hits = sum(1 for x_cache, _ in answers if x_cache.startswith("Hit"))
    later_pops_first = [s for run in first[1:] for _, s in run]  # regional hits (with Redis)
    l1 = [s for run in second for _, s in run]
    return {
        "requests": len(answers),
        "hit_ratio": hits / len(answers),
        "pop2_first_ms": statistics.median(later_pops_first) * 1000 if pops > 1 else 0.0,
        "l1_hit_ms": statistics.median(l1) * 1000,
    }


async def main(pops: int, objects: int) -> None:
    fetched = 0

    async def answer(request: web.Request) -> web.Response:
        nonlocal fetched
        fetched += 1
        return web.Response(text="x" * 4096, headers={"Cache-Control": "max-age=3600"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    origin_port = runner.addresses[0][1]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        before = fetched
        alone = await scenario(origin_port, pops, objects, None, Path(folder), "alone")
        rows.append(("L1 only (no regional tier)", fetched - before, alone))
        async with redis_server() as url:
            before = fetched
            shared = await scenario(origin_port, pops, objects, url, Path(folder), "shared")
            rows.append(("L1 + regional tier (Redis)", fetched - before, shared))
    await runner.cleanup()
    print(f"{pops} PoPs x {objects} objects (4 KB), each PoP asks for each object twice")
    print(
        f"{'setup':<28} {'requests':>8} {'origin req':>10} {'hit ratio':>9} "
        f"{'2nd PoP 1st req ms':>18} {'L1 hit ms':>9}"
    )
    for name, origin_requests, row in rows:
        print(
            f"{name:<28} {row['requests']:>8.0f} {origin_requests:>10} {row['hit_ratio']:>9.1%} "
            f"{row['pop2_first_ms']:>18.2f} {row['l1_hit_ms']:>9.2f}"
        )
    added = shared["pop2_first_ms"] - shared["l1_hit_ms"]
    print(f"a regional hit adds {added:.2f} ms (median) to an L1 hit")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pops", type=int, default=3)
    parser.add_argument("--objects", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvloop.run(main(args.pops, args.objects))
