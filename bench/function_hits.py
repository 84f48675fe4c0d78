"""What a viewer-stage CloudFront Function costs a cache hit, in requests per second.

    .venv/bin/python -m bench.function_hits [--requests 3000] [--repeats 5]

One edge in this process serves the same cached object on three behaviors: ``/plain/*`` on the
quick hit path, ``/full/*`` on the full flow without a function, ``/fn/*`` with a
viewer-request CloudFront Function that returns its request unchanged (the cheapest real one).
A viewer sends sequential GETs over one keep-alive connection (as ``bench/client.py`` does);
the table gives the median and the best of ``--repeats`` runs of ``--requests`` hits each,
after a warm-up (the runtime process started, the object cached). Logging at WARNING, as in
``make bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
import yaml
from aiohttp import web

from bench.client import read_answer, request_bytes
from edgeproxy.config.loading import load_config
from edgeproxy.runtime import running_edge

NO_OP = "function handler(event) { return event.request; }\n"
ARN = "arn:aws:cloudfront::123456789012:function/noop"


def document(origin_port: int, code: Path) -> dict[str, Any]:
    behavior: dict[str, Any] = {
        "target_origin_id": "o",
        "viewer_protocol_policy": "allow-all",
        "allowed_methods": ["GET", "HEAD"],
        "cached_methods": ["GET", "HEAD"],
        "forwarded_values": {"query_string": False, "cookies": {"forward": "none"}},
    }
    origin = {
        "origin_id": "o",
        "domain_name": "127.0.0.1",
        "custom_origin_config": {
            "http_port": origin_port,
            "https_port": 443,
            "origin_protocol_policy": "http-only",
            "origin_ssl_protocols": ["TLSv1.2"],
        },
    }
    with_function = dict(behavior, path_pattern="/fn/*")
    with_function["function_association"] = [{"event_type": "viewer-request", "function_arn": ARN}]
    # the full flow without a function: a CloudFront-* header named takes hits off the quick
    # path (routes.py HIT_STEPS), at the cost of one header computed per request
    full_flow = dict(behavior, path_pattern="/full/*")
    full_flow["forwarded_values"] = dict(
        behavior["forwarded_values"], headers=["CloudFront-Is-Desktop-Viewer"]
    )
    return {
        "distribution": {
            "origin": [origin],
            "default_cache_behavior": behavior,
            "ordered_cache_behavior": [with_function, full_flow],
        },
        "edge": {
            "listeners": {"host": "127.0.0.1", "http_port": 0},
            "admin": {"port": 0},
            "functions": {ARN: {"file": str(code)}},
        },
    }


async def hits(port: int, path: str, count: int, warm_up: bool = False) -> float:
    """Requests per second of ``count`` sequential GETs on one connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = request_bytes(path, port)
    try:
        started = time.perf_counter()
        for _ in range(count):
            writer.write(request)
            answer = await read_answer(reader)
            hit = answer.headers.get("x-cache", "").startswith("Hit")
            if answer.status != 200 or not (hit or warm_up):
                raise RuntimeError(f"{path}: not a hit: {answer}")
        return count / (time.perf_counter() - started)
    finally:
        writer.close()


async def main(count: int, repeats: int) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="x" * 1024, headers={"Cache-Control": "max-age=3600"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin_port = runner.addresses[0][1]
    with tempfile.TemporaryDirectory() as folder:
        code = Path(folder) / "noop.js"
        code.write_text(NO_OP)
        config_path = Path(folder) / "distribution.yaml"
        config_path.write_text(yaml.safe_dump(document(origin_port, code)))
        config = load_config(config_path).config
        async with running_edge(config, use_dns=False) as edge:
            port = edge.ports["http"]
            results: dict[str, list[float]] = {"/plain/x": [], "/full/x": [], "/fn/x": []}
            for path in results:
                await hits(port, path, 200, warm_up=True)  # warm-up: cached, runtime started
            for _ in range(repeats):
                for path, runs in results.items():
                    runs.append(await hits(port, path, count))
    await runner.cleanup()
    print(f"{'behavior':<34} {'median req/s':>12} {'best req/s':>11}")
    names = {
        "/plain/x": "hit, quick path",
        "/full/x": "hit, full flow, no function",
        "/fn/x": "hit, no-op viewer-request function",
    }
    for path, runs in results.items():
        print(f"{names[path]:<34} {statistics.median(runs):>12.0f} {max(runs):>11.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvloop.run(main(args.requests, args.repeats))
