"""The admin API, on its own listener: cache stats and entries, recent exchanges (and the
timeline UI that shows them: admin/exchanges.py, admin/ui.py), invalidations. JSON in, JSON
out; every route is in docs/admin.md.

It listens on loopback by default; the config refuses any other address unless
``edge.admin.token`` is set (edge_settings.AdminListener). One gate (``guard``) stands before
every handler, its refusals in this order:

* without a token, a Host that is not loopback (``localhost``, ``127.0.0.0/8``, ``[::1]``,
  any port): 403. A web page whose name an attacker re-points at 127.0.0.1 (DNS rebinding)
  sends its own name as Host, so it never reaches the API.
* with a token, a call without ``Authorization: Bearer <token>``: 401, wherever the API
  listens (a page cannot send it: it does not know it). The comparison takes the same time
  whatever the guess.
* a call that changes state (any method but GET, HEAD, OPTIONS) from another site: 403 when
  ``Sec-Fetch-Site`` says neither ``same-origin`` nor ``none``, or, without it, when
  ``Origin`` names another host than Host (the algorithm of Go's net/http
  CrossOriginProtection). curl and scripts send neither header and pass.
* such a call whose Content-Type is not ``application/json``: 415. A form post or a
  no-cors fetch() can only send form and text types without a CORS preflight, which this
  API never grants.
* any other request a browser sends from another site but a link followed to a page:
  403 (``ui.isolation``, after this gate), so no page elsewhere loads the API's answers.

A wildcard invalidation runs in steps (``CacheStore.invalidation``), the loop free for
viewers between them.
"""

from __future__ import annotations

import hmac
import itertools
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from edgeproxy.admin.exchanges import add_exchange_routes
from edgeproxy.admin.metrics import add_metrics_route
from edgeproxy.admin.ui import add_ui_routes, isolation
from edgeproxy.pipeline import Edge
from edgeproxy.viewer.request_checks import ServedHosts

EDGE = web.AppKey("edge", Edge)
INVALIDATIONS = web.AppKey("invalidations", dict[str, dict[str, Any]])
INVALIDATION_IDS = web.AppKey("invalidation_ids", Iterator[int])

# The history the API lists is bounded, so a long run of invalidations does not grow memory.
KEPT_INVALIDATIONS = 1000
MAX_PATHS = 3000  # paths in progress per distribution (reference 5); ours complete at once


LOOPBACK = ServedHosts(())  # no names of its own: localhost and loopback addresses
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})  # Sec-Fetch-Site of the API's own use


def guard(token: str | None) -> Middleware:
    """The gate before every handler (module docstring): Host, token, cross-site, JSON."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        refusal = _refusal(request, expected)
        return refusal if refusal is not None else await handler(request)

    return check


def _refusal(request: web.Request, expected: bytes | None) -> web.Response | None:
    host = request.headers.get("Host", "")
    if expected is None and not LOOPBACK.serves(host):
        return _error(
            403,
            f"Host {host[:100]!r} refused: without edge.admin.token the admin API answers "
            "only loopback names (localhost, 127.0.0.1, [::1])",
        )
    if expected is not None:
        given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            return _error(
                401,
                "missing or wrong admin token (Authorization: Bearer <token>)",
                {"WWW-Authenticate": 'Bearer realm="edgeproxy admin"'},
            )
    if request.method in SAFE_METHODS:
        return None
    if _cross_site(request.headers, host):
        return _error(403, "a cross-site request from a web page may not change state")
    if request.content_type != "application/json":
        return _error(415, "a request that changes state must send application/json")
    return None


def _cross_site(headers: Mapping[str, str], host: str) -> bool:
    """Go's CrossOriginProtection: Sec-Fetch-Site when the browser sends it, else Origin
    against Host; neither header (curl, scripts): not a browser's cross-site request."""
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.lower() not in SAME_ORIGIN_SITES
    origin = headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc.lower() != host.lower()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def admin_app(edge: Edge, token: str | None = None) -> web.Application:
    """The admin API of ``edge``; with ``token`` (edge.admin.token) every call needs it."""
    app = web.Application(middlewares=[guard(token), isolation])
    app[EDGE] = edge
    app[INVALIDATIONS] = {}
    app[INVALIDATION_IDS] = itertools.count(1)
    app.router.add_get("/stats", stats)
    app.router.add_get("/cache", cache_entries)
    app.router.add_post("/invalidations", create_invalidation)
    app.router.add_get("/invalidations", list_invalidations)
    app.router.add_get("/invalidations/{id}", get_invalidation)
    add_metrics_route(app, edge)
    add_exchange_routes(app, EDGE)  # admin/exchanges.py
    add_ui_routes(app)  # admin/ui.py: the timeline at /
    return app


async def stats(request: web.Request) -> web.Response:
    edge = request.app[EDGE]
    regional = edge.regional.stats.as_dict() if edge.regional is not None else None
    return web.json_response(
        {
            "pop": edge.identity.pop,
            "cache": edge.cache.stats.as_dict(),
            "regional": regional,
            "responses": dict(edge.counters),
        }
    )


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
    removed = await edge.invalidate(paths)
    pops: dict[str, int] = {}
    if edge.regional is not None:  # every PoP's cache and the regional tier, over Redis
        regional_removed, reached, acked = await edge.regional.invalidate(paths)
        pops = {"regional_removed": regional_removed, "pops": reached, "acknowledged": acked}
    store = request.app[INVALIDATIONS]
    ids = request.app[INVALIDATION_IDS]
    inv_id = f"I{next(ids):013d}"
    store[inv_id] = {
        "id": inv_id,
        # Completed once every PoP that got the message removed the paths from its cache
        "status": "Completed"
        if pops.get("acknowledged", 0) >= pops.get("pops", 0)
        else "InProgress",
        "create_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "paths": paths,
        "removed": removed,
        **pops,
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
