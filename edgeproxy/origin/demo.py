"""The built-in demo origin: serves a folder (``config/demo-site/``) with Cache-Control
headers chosen by file type, ETag and Last-Modified, so the demo shows misses, hits and
revalidation without the internet. It refuses any path that leaves its folder, and answers
404 to a path that names no file it could have (a NUL byte, a name too long)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from aiohttp import web

log = logging.getLogger("edgeproxy.demo_origin")

# Cache-Control per file suffix: pages short-lived, assets long-lived.
CACHE_CONTROL: dict[str, str] = {
    ".html": "public, max-age=60",
    ".css": "public, max-age=86400",
    ".js": "public, max-age=86400",
    ".svg": "public, max-age=86400",
    ".png": "public, max-age=86400",
    ".json": "no-cache",
}
DEFAULT_CACHE_CONTROL = "public, max-age=300"

REQUESTS = web.AppKey("requests", Counter[str])


def demo_origin_app(root: Path) -> web.Application:
    """An aiohttp application serving ``root``; ``app[REQUESTS]`` counts requests per path."""
    app = web.Application()
    app[REQUESTS] = Counter()
    resolved_root = root.resolve()

    async def serve(request: web.Request) -> web.StreamResponse:
        app[REQUESTS][request.path] += 1
        log.info("origin %s %s", request.method, request.path_qs)
        path = _file_for(resolved_root, request.path)
        if path is None:
            return web.Response(status=404, text="not found\n", headers=_no_store())
        response = web.FileResponse(path)
        response.headers["Cache-Control"] = CACHE_CONTROL.get(path.suffix, DEFAULT_CACHE_CONTROL)
        return response

    app.router.add_route("*", "/{tail:.*}", serve)
    return app


def _file_for(root: Path, url_path: str) -> Path | None:
    """The file a URL path names inside ``root`` (directories give their index.html), or
    None when it does not exist, would leave ``root`` (path traversal), or is a name no file
    can have: a NUL byte (ValueError) or a name or path too long for the file system
    (ENAMETOOLONG), which the OS refuses before looking."""
    try:
        candidate = (root / url_path.lstrip("/")).resolve()
        if candidate != root and root not in candidate.parents:
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None
    except (OSError, ValueError):
        return None


def _no_store() -> dict[str, str]:
    # A short error TTL keeps the demo lively when a missing file is added.
    return {"Cache-Control": "max-age=5"}
