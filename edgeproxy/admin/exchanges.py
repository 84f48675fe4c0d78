"""The admin API's exchanges: the list (with filters), one exchange's detail, its kept
bodies, and a live stream of new exchanges (Server-Sent Events) for the timeline UI.
docs/admin.md describes every route and field.

A body is served as a download, never as a page of this origin: an origin's or a function's
HTML opened at the admin listener's address could otherwise script the admin API."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Mapping

from aiohttp import web

from edgeproxy.exchange import Exchange
from edgeproxy.pipeline import Edge

STREAM_QUEUE = 1000  # exchanges a slow stream reader may fall behind by; then "lagged"
KEEP_ALIVE_S = 15.0  # a comment line this often, so proxies and browsers keep the stream
_STATUS = re.compile(r"[1-5](?:[0-9]{2}|xx)")
_WHICH = re.compile(r"request|response|origin-[0-9]{1,3}")


def add_exchange_routes(app: web.Application, edge_key: web.AppKey[Edge]) -> None:
    """``/exchanges``, ``/exchanges/stream``, ``/exchanges/{id}``, ``.../body/{which}``."""
    streams: set[asyncio.Queue[Exchange | None]] = set()

    async def listing(request: web.Request) -> web.Response:
        return exchanges(request, request.app[edge_key])

    async def live(request: web.Request) -> web.StreamResponse:
        return await stream(request, request.app[edge_key], streams)

    async def one(request: web.Request) -> web.Response:
        return detail(request, request.app[edge_key])

    async def kept_body(request: web.Request) -> web.Response:
        return body(request, request.app[edge_key])

    async def end_streams(app: web.Application) -> None:
        for queue in list(streams):  # a stream ends when the edge stops, not 60 s later
            while not _offer(queue, None):
                queue.get_nowait()

    app.router.add_get("/exchanges", listing)
    app.router.add_get("/exchanges/stream", live)  # before {id}: "stream" is not an id
    app.router.add_get("/exchanges/{id}", one)
    app.router.add_get("/exchanges/{id}/body/{which}", kept_body)
    app.on_shutdown.append(end_streams)


# -- filters -----------------------------------------------------------------------------------


def filter_of(query: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The filters of a query (``path``, ``status``, ``x_cache``, ``stage``), or a problem."""
    chosen = {k: query[k] for k in ("path", "status", "x_cache", "stage") if query.get(k)}
    status = chosen.get("status")
    if status is not None and not _STATUS.fullmatch(status):
        return chosen, "status is a status code (404) or a class (4xx)"
    return chosen, ""


def matches(ex: Exchange, chosen: Mapping[str, str]) -> bool:
    """Whether ``ex`` passes every filter: ``path`` is part of the uri, ``status`` the status
    or its class, ``x_cache`` part of X-Cache (any case), ``stage`` a stage that ran
    (``none``: no function ran)."""
    path, status = chosen.get("path"), chosen.get("status")
    if path is not None and path not in ex.uri:
        return False
    if status is not None:
        code = str(ex.status)
        if code != status and not (status.endswith("xx") and code[:1] == status[:1]):
            return False
    x_cache = chosen.get("x_cache")
    if x_cache is not None and x_cache.lower() not in ex.x_cache.lower():
        return False
    stage = chosen.get("stage")
    if stage is not None:
        return not ex.stages if stage == "none" else stage in ex.stages
    return True


# -- handlers ----------------------------------------------------------------------------------


def exchanges(request: web.Request, edge: Edge) -> web.Response:
    """The most recent exchanges that pass the filters, oldest first (``limit``: how many)."""
    limit = request.query.get("limit", "100")
    if not (limit.isascii() and limit.isdigit()):
        return _error(400, "limit must be a whole number")
    chosen, problem = filter_of(request.query)
    if problem:
        return _error(400, problem)
    found = (ex for ex in reversed(edge.recent) if matches(ex, chosen))
    recent = list(itertools.islice(found, int(limit)))[::-1]
    return web.json_response([ex.record() for ex in recent])


def detail(request: web.Request, edge: Edge) -> web.Response:
    ex = edge.recent.find(request.match_info["id"])
    if ex is None:
        return _error(404, "no such exchange (the history keeps the most recent ones)")
    found = ex.detail()
    base = f"/exchanges/{ex.request_id}/body/"
    for name, message in (("request", found["request"]), ("response", found["response"])):
        if message is not None and message["body_kept"]:
            message["body_url"] = base + name
    for number, call in enumerate(found["origin"]):
        answer = call["response"]
        if answer is not None and answer["body_kept"]:
            answer["body_url"] = f"{base}origin-{number}"
    return web.json_response(found)


def body(request: web.Request, edge: Edge) -> web.Response:
    """A kept body, as an attachment that no browser runs as a page of this origin."""
    ex = edge.recent.find(request.match_info["id"])
    which = request.match_info["which"]
    seen = ex.body(which) if ex is not None and _WHICH.fullmatch(which) else None
    if ex is None or seen is None:
        return _error(404, "no such exchange or body")
    whole = "unknown" if seen.size is None else str(seen.size)
    return web.Response(
        body=seen.body,
        content_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{which}.bin"',
            "Content-Security-Policy": "sandbox",
            "X-Content-Type-Options": "nosniff",
            "X-Edgeproxy-Body-Size": whole,
            "X-Edgeproxy-Truncated": "false" if seen.size == len(seen.body) else "true",
        },
    )


async def stream(
    request: web.Request, edge: Edge, streams: set[asyncio.Queue[Exchange | None]]
) -> web.StreamResponse:
    """Server-Sent Events: ``event: exchange`` with each new exchange's record that passes
    the filters; ``event: lagged`` when the reader fell ``STREAM_QUEUE`` behind and missed
    some (read the list again)."""
    chosen, problem = filter_of(request.query)
    if problem:
        return _error(400, problem)
    queue: asyncio.Queue[Exchange | None] = asyncio.Queue(STREAM_QUEUE)
    lagged = [False]

    def heard(ex: Exchange) -> None:
        if matches(ex, chosen) and not _offer(queue, ex):
            lagged[0] = True

    answer = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await answer.prepare(request)
    edge.recent.listeners.append(heard)
    streams.add(queue)
    try:
        await answer.write(b"retry: 1000\n: connected\n\n")
        while (line := await _next_event(queue, lagged)) is not None:
            await answer.write(line)
    except ConnectionError:
        pass  # the reader went away
    finally:
        edge.recent.listeners.remove(heard)
        streams.discard(queue)
    return answer


async def _next_event(queue: asyncio.Queue[Exchange | None], lagged: list[bool]) -> bytes | None:
    """The next event's bytes (a keep-alive comment when nothing happened); None: stop."""
    if lagged[0]:
        lagged[0] = False
        return b"event: lagged\ndata: {}\n\n"
    try:
        ex = await asyncio.wait_for(queue.get(), KEEP_ALIVE_S)
    except TimeoutError:
        return b": keep-alive\n\n"
    if ex is None:
        return None
    data = json.dumps(ex.record(), separators=(",", ":"))
    return f"event: exchange\nid: {ex.request_id}\ndata: {data}\n\n".encode()


def _offer(queue: asyncio.Queue[Exchange | None], item: Exchange | None) -> bool:
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:
        return False
    return True


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
