"""The soak origin: healthy objects, uncacheable ones, origin errors and a broken answer.

    /hit/<n>      200, 2 KB, cacheable for an hour
    /miss/<any>   200, 1 KB, Cache-Control: no-store (every request reaches the origin)
    /error/500    500 from the origin (CloudFront caches it for the error-caching TTL)
    /reset/<any>  a Content-Length of 4,096, 512 bytes sent, then the connection aborted
                  (the edge must answer 502 and cache nothing)

Run: ``python -m bench.soak_origin --port 8081``.
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop
from aiohttp import web

HIT_BODY = b"h" * 2048
MISS_BODY = b"m" * 1024


async def hit(_request: web.Request) -> web.Response:
    return web.Response(body=HIT_BODY, headers={"Cache-Control": "public, max-age=3600"})


async def miss(_request: web.Request) -> web.Response:
    return web.Response(body=MISS_BODY, headers={"Cache-Control": "no-store"})


async def error(_request: web.Request) -> web.Response:
    return web.Response(status=500, text="origin failed on purpose")


async def reset(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_length = 4096
    await response.prepare(request)
    await response.write(b"r" * 512)
    assert request.transport is not None
    request.transport.abort()
    return response


def app() -> web.Application:
    application = web.Application()
    application.router.add_get("/hit/{n}", hit)
    application.router.add_get("/miss/{tail:.*}", miss)
    application.router.add_get("/error/500", error)
    application.router.add_get("/reset/{tail:.*}", reset)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        web.run_app(
            app(), host="127.0.0.1", port=args.port, access_log=None, print=None,
            loop=runner.get_loop(),
        )


if __name__ == "__main__":
    main()
