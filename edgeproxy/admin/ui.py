"""The timeline UI at the admin listener's ``/``: plain HTML, CSS and JavaScript from
``admin/static/`` (package data; no build step, nothing fetched from elsewhere), reading
the exchanges API (admin/exchanges.py). docs/ui.md shows it.

``isolation`` is the Fetch Metadata resource isolation policy for the whole admin API: a
page of another site may link to the UI (a top-level navigation), but no other request of
a browser from another site is answered, so no page elsewhere can load the API's answers
as scripts, images or frames. Scripts and curl send no ``Sec-Fetch-Site`` and pass."""

from __future__ import annotations

from importlib.resources import files

from aiohttp import web
from aiohttp.typedefs import Handler

STATIC = files("edgeproxy.admin") / "static"
# name → Content-Type of what the UI serves; nothing else is served from the folder.
FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}
PAGE_HEADERS = {
    # Only the UI's own files run; the API is the only place it talks to.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
SAME_SITES = frozenset({"same-origin", "none"})


def add_ui_routes(app: web.Application) -> None:
    app.router.add_get("/", page)
    app.router.add_get("/ui/{name}", asset)


async def page(request: web.Request) -> web.Response:
    return _file("index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in FILES or name == "index.html":
        return web.json_response({"error": "no such file"}, status=404)
    return _file(name)


def _file(name: str) -> web.Response:
    text = (STATIC / name).read_text(encoding="utf-8")
    return web.Response(text=text, content_type=FILES[name], headers=PAGE_HEADERS)


@web.middleware
async def isolation(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a browser's request from another site unless it opens a page (module doc)."""
    site = request.headers.get("Sec-Fetch-Site", "none").lower()
    if site in SAME_SITES or _navigation(request):
        return await handler(request)
    return web.json_response(
        {"error": "the admin API answers only its own pages and non-browser clients"},
        status=403,
    )


def _navigation(request: web.Request) -> bool:
    headers = request.headers
    return (
        request.method == "GET"
        and headers.get("Sec-Fetch-Mode", "navigate") == "navigate"
        and headers.get("Sec-Fetch-Dest", "document") == "document"
    )
