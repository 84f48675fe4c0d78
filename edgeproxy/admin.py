"""The admin API, on its own listener: cache stats and entries, recent exchanges,
invalidations. JSON in, JSON out.

It listens on loopback by default; the config refuses any other address unless
``edge.admin.token`` is set (edge_settings.AdminListener). With a token, every call must
carry ``Authorization: Bearer <token>``, wherever the API listens: otherwise 401, and the
handler never runs. The comparison takes the same time whatever the guess.
"""

from __future__ import annotations

import hmac
import itertools
import time
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .pipeline import Edge

EDGE = web.AppKey("edge", Edge)
INVALIDATIONS = web.AppKey("invalidations", dict[str, dict[str, Any]])
INVALIDATION_IDS = web.AppKey("invalidation_ids", Iterator[int])

# The history the API lists is bounded, so a long run of invalidations does not grow memory.
KEPT_INVALIDATIONS = 1000
MAX_PATHS = 3000  # paths in progress per distribution (reference 5); ours complete at once


def bearer_token(token: str) -> Middleware:
    """A middleware that answers 401 to any call without ``Authorization: Bearer <token>``."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "missing or wrong admin token (Authorization: Bearer <token>)"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="edgeproxy admin"'},
            )
        return await handler(request)

    return check


def admin_app(edge: Edge, token: str | None = None) -> web.Application:
    """The admin API of ``edge``; with ``token`` (edge.admin.token) every call needs it."""
    app = web.Application(middlewares=[bearer_token(token)] if token else [])
    app[EDGE] = edge
    app[INVALIDATIONS] = {}
    app[INVALIDATION_IDS] = itertools.count(1)
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
    limit = request.query.get("limit", "100")
    if not (limit.isascii() and limit.isdigit()):
        return web.json_response({"error": "limit must be a whole number"}, status=400)
    recent = list(itertools.islice(reversed(edge.recent), int(limit)))[::-1]
    return web.json_response([ex.record() for ex in recent])


async def cache_entries(request: web.Request) -> web.Response:
    return web.json_response(request.app[EDGE].cache.entries())


async def create_invalidation(request: web.Request) -> web.Response:
    """Body ``{"paths": ["/img/*", "/index.html"]}``; ``*`` only as the last character."""
    try:
        payload = await request.json()
    except ValueError:  # not JSON, or not UTF-8
        return web.json_response({"error": "the body must be JSON"}, status=400)
    paths = payload.get("paths") if isinstance(payload, dict) else None
    problem = _invalid_paths(paths)
    if problem:
        return web.json_response({"error": problem}, status=400)
    edge = request.app[EDGE]
    assert isinstance(paths, list)
    removed = sum(int(edge.cache.invalidate(p)) for p in paths)
    store = request.app[INVALIDATIONS]
    ids = request.app[INVALIDATION_IDS]
    inv_id = f"I{next(ids):013d}"
    store[inv_id] = {
        "id": inv_id,
        "status": "Completed",
        "create_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "paths": paths,
        "removed": removed,
    }
    while len(store) > KEPT_INVALIDATIONS:
        del store[next(iter(store))]  # the oldest
    return web.json_response(store[inv_id], status=201)


def _invalid_paths(paths: object) -> str:
    if not isinstance(paths, list) or not paths:
        return "paths must be a non-empty list"
    if len(paths) > MAX_PATHS:
        return f"at most {MAX_PATHS:,} paths per invalidation"
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
