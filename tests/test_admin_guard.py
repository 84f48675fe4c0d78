"""The admin API against a web page in the user's browser, through the real admin listener of
a real edge: a DNS-rebound name (Host not loopback) is refused, so is a cross-site request
that changes state (a form post, a cross-site Origin or Sec-Fetch-Site); the configured token
guards the single edge's listener too; and a big invalidation leaves the loop free for
viewers while it runs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import RecordingOrigin, StartEdge, Viewer, distribution

from edgeproxy.cache.key import CacheKey
from edgeproxy.cache.store import CachedObject

JSON = {"Content-Type": "application/json"}
INVALIDATE = b'{"paths": ["/a"]}'


@pytest.fixture
async def cached(origin: RecordingOrigin, start_edge: StartEdge) -> Viewer:
    """A real edge holding /a in its cache, its admin API on a loopback port."""
    viewer: Viewer = await start_edge(distribution(origin.port))
    assert (await viewer.get("/a")).status_code == 200
    return viewer


async def still_cached(viewer: Viewer) -> bool:
    return (await viewer.get("/a")).headers["x-cache"] == "Hit from cloudfront"


def admin_port(viewer: Viewer) -> int:
    return viewer.running.ports["admin"]


# -- DNS rebinding: only loopback names reach the API -------------------------------------------


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:{port}", "192.0.2.7:{port}", "localhost.evil.example"]
)
async def test_a_host_that_is_not_loopback_is_refused(host: str, cached: Viewer):
    host = host.format(port=admin_port(cached))
    url = cached.running.admin_url
    for method, path, body in [("GET", "/stats", None), ("POST", "/invalidations", INVALIDATE)]:
        answer = await cached.client.request(
            method, url + path, content=body, headers={"Host": host, **JSON}
        )
        assert answer.status_code == 403, (path, answer.text)
        assert "loopback" in answer.json()["error"]
    assert await still_cached(cached)


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LOCALHOST"]
)
async def test_loopback_hosts_are_served(host: str, cached: Viewer):
    headers = {"Host": host.format(port=admin_port(cached))}
    answer = await cached.client.get(cached.running.admin_url + "/stats", headers=headers)
    assert answer.status_code == 200


# -- cross-site requests that change state -----------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "text/plain; charset=utf-8",
        None,
    ],
)
async def test_an_invalidation_that_is_not_json_is_415(content_type: str | None, cached: Viewer):
    # What a <form> or a no-cors fetch() on any web page can send without a CORS preflight
    headers = {"Content-Type": content_type} if content_type else {}
    answer = await cached.client.post(
        cached.running.admin_url + "/invalidations", content=INVALIDATE, headers=headers
    )
    assert answer.status_code == 415
    assert "application/json" in answer.json()["error"]
    assert await still_cached(cached)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:1"},  # another local app is another origin
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://127.0.0.1:{port}"},
    ],
)
async def test_a_cross_site_invalidation_is_403(headers: dict[str, str], cached: Viewer):
    headers = {k: v.format(port=admin_port(cached)) for k, v in headers.items()}
    answer = await cached.client.post(
        cached.running.admin_url + "/invalidations", content=INVALIDATE, headers={**JSON, **headers}
    )
    assert answer.status_code == 403
    assert "cross-site" in answer.json()["error"]
    assert await still_cached(cached)


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, the CLI, scripts: no browser headers at all
        {"Content-Type": "application/json; charset=utf-8"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:{port}"},
        {"Sec-Fetch-Site": "none"},  # typed by the user
        {"Origin": "http://127.0.0.1:{port}"},
    ],
)
async def test_a_same_origin_json_invalidation_is_made(headers: dict[str, str], cached: Viewer):
    headers = {**JSON, **{k: v.format(port=admin_port(cached)) for k, v in headers.items()}}
    answer = await cached.client.post(
        cached.running.admin_url + "/invalidations", content=INVALIDATE, headers=headers
    )
    assert answer.status_code == 201, answer.text
    assert not await still_cached(cached)


async def test_reading_stays_open_to_a_link_from_elsewhere(cached: Viewer):
    # A cross-site GET cannot read the answer (no CORS headers) and changes nothing
    headers = {"Sec-Fetch-Site": "cross-site"}
    answer = await cached.client.get(cached.running.admin_url + "/stats", headers=headers)
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


# -- the token on the edge's own listener ------------------------------------------------------


async def test_the_configured_token_guards_the_running_edges_admin_api(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = distribution(origin.port)
    document["edge"]["admin"]["token"] = "s3cret"
    viewer = await start_edge(document)
    url = viewer.running.admin_url
    assert (await viewer.client.get(url + "/stats")).status_code == 401
    bearer = {"Authorization": "Bearer s3cret"}
    assert (await viewer.client.get(url + "/stats", headers=bearer)).status_code == 200


# -- a big invalidation does not stop the edge ------------------------------------------------

OBJECTS = 50_000


def fill(viewer: Viewer, count: int) -> None:
    """``count`` small objects under /bulk/ straight into the edge's real store (as many
    viewer requests would take minutes)."""
    cache = viewer.running.edge.cache
    for n in range(count):
        key = CacheKey("edge.test", "", f"/bulk/{n}", "", (), "", "")
        cache.put(key, CachedObject(200, "OK", [], b"", 0.0, 1e12))


async def test_a_hit_is_answered_while_a_big_invalidation_runs(cached: Viewer):
    fill(cached, OBJECTS)
    cache = cached.running.edge.cache
    invalidation = asyncio.create_task(
        cached.client.post(
            cached.running.admin_url + "/invalidations",
            json={"paths": ["/bulk/*"]},
        )
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (cache.stats.invalidations > 0 or invalidation.done()) and loop.time() < deadline:
        await asyncio.sleep(0)  # one loop turn: an invalidation step may run in each
    assert not invalidation.done(), "the invalidation held the loop from start to end"
    assert 0 < cache.stats.invalidations < OBJECTS
    hit = await cached.get("/a")  # a viewer served in the middle of it
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert not invalidation.done() and cache.stats.invalidations < OBJECTS
    answer: Any = await invalidation
    assert answer.status_code == 201
    assert answer.json()["removed"] == OBJECTS
    assert len(cache) == 1  # /a alone is left
    assert cache.stats.invalidations == OBJECTS


async def test_an_invalidation_of_everything_still_removes_everything(cached: Viewer):
    fill(cached, 3000)
    answer = await cached.client.post(
        cached.running.admin_url + "/invalidations", json={"paths": ["/*"]}
    )
    assert answer.json()["removed"] == 3001
    assert len(cached.running.edge.cache) == 0
