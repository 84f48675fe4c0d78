"""The parent's admin API when the edge runs several workers: every call goes to each
worker's own admin listener and the answers are merged (counters summed, lists joined), so
an invalidation reaches every worker's cache."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

# The invalidation history is kept here as the single edge's admin API keeps it.
from edgeproxy.admin.api import INVALIDATIONS, get_invalidation, guard, list_invalidations
from edgeproxy.admin.metrics import add_fanout_metrics_route
from edgeproxy.admin.ui import add_ui_routes, isolation


@dataclass(frozen=True, slots=True)
class WorkerAdmin:
    pid: int
    port: int
    token: str | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


WORKERS = web.AppKey("workers", list[WorkerAdmin])


def fanout_app(workers: list[WorkerAdmin], token: str | None = None) -> web.Application:
    """The parent's admin API, behind the single edge's gate (``admin.guard``)."""
    app = web.Application(middlewares=[guard(token), isolation])
    app[WORKERS] = workers
    app[INVALIDATIONS] = {}
    app.router.add_get("/stats", stats)
    app.router.add_get("/exchanges", exchanges)
    app.router.add_get("/exchanges/stream", stream)
    app.router.add_get("/exchanges/{id}", one_of_them)
    app.router.add_get("/exchanges/{id}/body/{which}", one_of_them)
    add_ui_routes(app)
    app.router.add_get("/cache", cache_entries)
    app.router.add_post("/invalidations", create_invalidation)
    app.router.add_get("/invalidations", list_invalidations)
    app.router.add_get("/invalidations/{id}", get_invalidation)
    add_fanout_metrics_route(app, [(w.url, w.headers) for w in workers])
    return app


async def _each(
    request: web.Request, method: str, path: str, body: Any = None
) -> list[tuple[int, Any]]:
    """(status, JSON) from every worker, in worker order."""
    workers = request.app[WORKERS]
    auth = request.headers.get("Authorization")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def one(worker: WorkerAdmin) -> tuple[int, Any]:
            headers = {"Authorization": auth} if auth else worker.headers
            async with session.request(
                method, worker.url + path, json=body, headers=headers
            ) as resp:
                return resp.status, await resp.json()

        return list(await asyncio.gather(*(one(w) for w in workers)))


def _failure(answers: list[tuple[int, Any]]) -> web.Response | None:
    for status, payload in answers:
        if status >= 400:
            return web.json_response(payload, status=status)
    return None


async def stats(request: web.Request) -> web.Response:
    answers = await _each(request, "GET", "/stats")
    failed = _failure(answers)
    if failed is not None:
        return failed
    cache: Counter[str] = Counter()
    responses: Counter[str] = Counter()
    for _, payload in answers:
        cache.update(payload["cache"])
        responses.update(payload["responses"])
    workers: list[WorkerAdmin] = request.app[WORKERS]
    per_worker = [
        {"pid": w.pid, **payload} for w, (_, payload) in zip(workers, answers, strict=True)
    ]
    payloads = [payload for _, payload in answers]
    return web.json_response(
        {
            "pop": payloads[0].get("pop"),  # the workers of one PoP share its name
            "cache": dict(cache),
            "regional": _summed_regional(payloads),
            "responses": dict(responses),
            "workers": per_worker,
        }
    )


def _summed_regional(payloads: list[Any]) -> dict[str, int | bool] | None:
    """The workers' regional counters summed; ``available`` while every worker reaches
    Redis. None without a regional tier."""
    regional = [p["regional"] for p in payloads if p.get("regional") is not None]
    if not regional:
        return None
    summed: Counter[str] = Counter()
    for counters in regional:
        summed.update({k: int(v) for k, v in counters.items() if k != "available"})
    return {**summed, "available": all(bool(c.get("available")) for c in regional)}


async def exchanges(request: web.Request) -> web.Response:
    answers = await _each(request, "GET", "/exchanges" + _query(request))
    failed = _failure(answers)
    return failed or web.json_response(list(itertools.chain(*(p for _, p in answers))))


async def one_of_them(request: web.Request) -> web.Response:
    """An exchange (or its body) from the worker that holds it: each is asked in turn."""
    auth = request.headers.get("Authorization")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for worker in request.app[WORKERS]:
            headers = {"Authorization": auth} if auth else worker.headers
            async with session.get(worker.url + request.rel_url.path, headers=headers) as resp:
                if resp.status != 404:
                    kept = {k: v for k, v in resp.headers.items() if k.lower() in _PASSED_ON}
                    return web.Response(status=resp.status, body=await resp.read(), headers=kept)
    return web.json_response({"error": "no such exchange or body"}, status=404)


_PASSED_ON = frozenset(
    {
        "content-type",
        "content-disposition",
        "content-security-policy",
        "x-content-type-options",
        "x-edgeproxy-body-size",
        "x-edgeproxy-truncated",
    }
)


async def stream(request: web.Request) -> web.StreamResponse:
    """Every worker's ``/exchanges/stream`` relayed as one, an event at a time."""
    blocks: asyncio.Queue[bytes] = asyncio.Queue(1000)
    auth = request.headers.get("Authorization")
    path = "/exchanges/stream" + _query(request)
    answer = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await answer.prepare(request)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=10)) as session:

        async def relay(worker: WorkerAdmin) -> None:
            headers = {"Authorization": auth} if auth else worker.headers
            async with session.get(worker.url + path, headers=headers) as resp:
                block = b""
                async for line in resp.content:
                    block += line
                    if line in (b"\n", b"\r\n"):
                        if b"event:" in block:  # not the worker's retry or keep-alive lines
                            await blocks.put(block)
                        block = b""

        tasks = [asyncio.create_task(relay(w)) for w in request.app[WORKERS]]
        try:
            await answer.write(b"retry: 1000\n: connected\n\n")
            while not all(t.done() for t in tasks) or not blocks.empty():
                try:
                    await answer.write(await asyncio.wait_for(blocks.get(), 15))
                except TimeoutError:
                    await answer.write(b": keep-alive\n\n")
        except ConnectionError:
            pass  # the reader went away
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return answer


async def cache_entries(request: web.Request) -> web.Response:
    answers = await _each(request, "GET", "/cache")
    failed = _failure(answers)
    return failed or web.json_response(list(itertools.chain(*(p for _, p in answers))))


async def create_invalidation(request: web.Request) -> web.Response:
    answers = await _each(request, "POST", "/invalidations", await request.json())
    failed = _failure(answers)
    if failed is not None:
        return failed
    store = request.app[INVALIDATIONS]
    first = answers[0][1]
    inv_id = f"I{len(store) + 1:013d}"
    store[inv_id] = {
        **first,
        "id": inv_id,
        "create_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "removed": sum(int(p.get("removed", 0)) for _, p in answers),
        "workers": len(answers),
    }
    return web.json_response(store[inv_id], status=201)


def _query(request: web.Request) -> str:
    return f"?{request.query_string}" if request.query_string else ""
