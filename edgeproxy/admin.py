"""The admin API, on its own loopback listener: cache stats and entries, recent exchanges,
invalidations. JSON in, JSON out."""

from __future__ import annotations

import itertools
import time
from typing import Any

from aiohttp import web

from .pipeline import Edge

EDGE = web.AppKey("edge", Edge)
INVALIDATIONS = web.AppKey("invalidations", dict[str, dict[str, Any]])


def admin_app(edge: Edge) -> web.Application:
    app = web.Application()
    app[EDGE] = edge
    app[INVALIDATIONS] = {}
    app.router.add_get("/stats", stats)
    app.router.add_get("/exchanges", exchanges)
    app.router.add_get("/cache", cache_entries)
    app.router.add_post("/invalidations", create_invalidation)
    app.router.add_get("/invalidations", list_invalidations)
    app.router.add_get("/invalidations/{id}", get_invalidation)
    return app


async def stats(request: web.Request) -> web.Response:
    edge = request.app[EDGE]
    return web.json_response(
        {"cache": edge.cache.stats.as_dict(), "responses": dict(edge.counters)}
    )


async def exchanges(request: web.Request) -> web.Response:
    """The most recent exchanges, oldest first: method, uri, status, X-Cache, stages run."""
    edge = request.app[EDGE]
    limit = int(request.query.get("limit", "100"))
    recent = list(itertools.islice(reversed(edge.recent), limit))[::-1]
    return web.json_response([ex.record() for ex in recent])


async def cache_entries(request: web.Request) -> web.Response:
    return web.json_response(request.app[EDGE].cache.entries())


async def create_invalidation(request: web.Request) -> web.Response:
    """Body ``{"paths": ["/img/*", "/index.html"]}``; ``*`` only as the last character."""
    payload = await request.json()
    paths = payload.get("paths") if isinstance(payload, dict) else None
    problem = _invalid_paths(paths)
    if problem:
        return web.json_response({"error": problem}, status=400)
    edge = request.app[EDGE]
    assert isinstance(paths, list)
    removed = sum(int(edge.cache.invalidate(p)) for p in paths)
    store = request.app[INVALIDATIONS]
    inv_id = f"I{len(store) + 1:013d}"
    store[inv_id] = {
        "id": inv_id,
        "status": "Completed",
        "create_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "paths": paths,
        "removed": removed,
    }
    return web.json_response(store[inv_id], status=201)


def _invalid_paths(paths: object) -> str:
    if not isinstance(paths, list) or not paths:
        return "paths must be a non-empty list"
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/"):
            return f"{path!r}: a path starts with /"
        if "*" in path[:-1]:
            return f"{path!r}: * is allowed only as the last character"
        if len(path) > 4000:
            return f"{path[:40]!r}...: a path has at most 4,000 characters"
    return ""


async def list_invalidations(request: web.Request) -> web.Response:
    return web.json_response(list(request.app[INVALIDATIONS].values()))


async def get_invalidation(request: web.Request) -> web.Response:
    found = request.app[INVALIDATIONS].get(request.match_info["id"])
    if found is None:
        return web.json_response({"error": "no such invalidation"}, status=404)
    return web.json_response(found)
