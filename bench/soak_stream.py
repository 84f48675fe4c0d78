"""``python -m bench.soak_stream``: one large body through ``OriginClient`` alone, to show a
stream is never held whole. A real aiohttp origin in a subprocess (so its memory is not
counted) answers ``--mib`` MiB with a Content-Length; the client, with ``max_body`` of
``--max-body-mib``, gets it as ``EdgeResponse.stream`` and reads it to the end. Printed: this
process's RSS before, at its peak (sampled every 16 MiB) and after, and the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import uvloop
from aiohttp import web

from edgeproxy.messages import EdgeRequest, OriginTarget
from edgeproxy.origin.client import OriginClient

from .procs import free_port, rss_of, start, stopping, wait_for_port

BLOCK = b"s" * (1 << 20)


async def big(request: web.Request) -> web.StreamResponse:
    size = int(request.match_info["mib"]) << 20
    response = web.StreamResponse()
    response.content_length = size
    await response.prepare(request)
    for _ in range(size >> 20):
        await response.write(BLOCK)
    return response


def serve(port: int) -> None:
    app = web.Application()
    app.router.add_get("/big/{mib}", big)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        web.run_app(app, host="127.0.0.1", port=port, print=None, loop=runner.get_loop())


async def measure(port: int, mib: int, max_body_mib: int) -> dict[str, float]:
    pid = os.getpid()
    client = OriginClient({}, use_dns=False, max_body=max_body_mib << 20)
    target = OriginTarget("127.0.0.1", port, "http")
    request = EdgeRequest("GET", f"/big/{mib}", "", [], "127.0.0.1", origin=target)
    before = rss_of(pid)
    started = time.monotonic()
    response = await client.fetch(request, [("Host", "127.0.0.1")])
    assert response.stream is not None, "the body should have come as a stream"
    received, peak, chunks, mark = 0, before, 0, 0
    async for chunk in response.stream:
        received += len(chunk)
        chunks += 1
        if received - mark >= 16 << 20:
            mark = received
            peak = max(peak, rss_of(pid))
    seconds = time.monotonic() - started
    await client.close()
    assert received == mib << 20, f"received {received} of {mib << 20} bytes"
    return {
        "bytes": received, "chunks": chunks, "seconds": seconds, "before": before,
        "peak": peak, "after": rss_of(pid),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak_stream", description=__doc__)
    parser.add_argument("--mib", type=int, default=1024, help="body size in MiB (1024)")
    parser.add_argument("--max-body-mib", type=int, default=64, help="max_body in MiB (64)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the origin subprocess
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, stopping([]) as procs:
        cmd = [sys.executable, "-m", "bench.soak_stream", "--serve", str(port)]
        procs.append(start("origin", cmd, Path(tmp) / "origin.log", None,
                           cwd=Path(__file__).resolve().parent.parent))
        wait_for_port(procs[0], port)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            m = runner.run(measure(port, args.mib, args.max_body_mib))
    mib = 1 << 20
    print(
        f"{m['bytes'] / mib:,.0f} MiB in {m['chunks']:,.0f} chunks, {m['seconds']:.1f} s "
        f"({m['bytes'] / mib / m['seconds']:,.0f} MiB/s); client RSS before "
        f"{m['before'] / mib:.1f} MiB, peak {m['peak'] / mib:.1f} MiB "
        f"(+{(m['peak'] - m['before']) / mib:.1f}), after {m['after'] / mib:.1f} MiB",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
