"""Request collapsing through a real edge (reference 7.4 step 7, 7.7, 7.13): concurrent misses
share one origin fetch only when its answer reaches every waiter as a cached object would.

The origin holds its answer (``gate``) until every viewer has looked the object up, so all of
them are in flight together; it echoes what tells the viewers apart (a cookie, Authorization,
a header), so a page served to the wrong viewer shows in the body."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from conftest import OriginResponse, RecordingOrigin, StartEdge, Viewer, distribution

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
WAIT_S = 10.0  # bound on every wait: a test never hangs, it fails

MISS, HIT = "Miss from cloudfront", "Hit from cloudfront"


def on_policies(origin_port: int, **behavior: Any) -> dict[str, Any]:
    """A distribution whose default behavior takes its cache settings from policies."""
    document = distribution(origin_port, **behavior)
    document["distribution"]["default_cache_behavior"].pop("forwarded_values")
    return document


def managed(cache_policy_id: str, origin_request_policy_id: str | None = None) -> dict[str, Any]:
    behavior = {"cache_policy_id": cache_policy_id}
    if origin_request_policy_id is not None:
        behavior["origin_request_policy_id"] = origin_request_policy_id
    return behavior


# An inline cache policy with Min TTL 0 that forwards no cookies and no Authorization (so
# collapsing is allowed for the behavior), and an origin request policy that sends the
# origin X-Viewer without putting it in the key: the origin can tell viewers apart, and
# says per answer whether it may be shared.
PER_ANSWER: dict[str, Any] = {
    "cache_policy": {
        "name": "min-ttl-0",
        "min_ttl": 0,
        "default_ttl": 60,
        "max_ttl": 600,
        "parameters_in_cache_key_and_forwarded_to_origin": {
            "headers_config": {"header_behavior": "none"},
            "cookies_config": {"cookie_behavior": "none"},
            "query_strings_config": {"query_string_behavior": "none"},
        },
    },
    "origin_request_policy": {
        "name": "x-viewer",
        "headers_config": {"header_behavior": "whitelist", "headers": {"items": ["X-Viewer"]}},
        "cookies_config": {"cookie_behavior": "none"},
        "query_strings_config": {"query_string_behavior": "none"},
    },
}


async def _until(condition: Any, seconds: float = WAIT_S) -> bool:
    """Poll ``condition`` until it holds (True) or ``seconds`` pass (False)."""
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _misses(viewer: Viewer) -> int:
    found: int = (await viewer.stats())["cache"]["misses"]
    return found


async def concurrent(
    viewer: Viewer,
    origin: RecordingOrigin,
    path: str,
    viewers_headers: list[dict[str, str]],
    *,
    in_flight: int,
) -> list[httpx.Response]:
    """Send every request at once; open the origin's gate once each has looked the object
    up in the cache (a miss: the edge joins the fetch under way, or starts its own, in the
    same step) and ``in_flight`` requests have reached the origin."""
    gate = origin.responses[path].gate
    assert gate is not None
    before = await _misses(viewer)
    tasks = [asyncio.ensure_future(viewer.get(path, headers=h)) for h in viewers_headers]

    async def all_looked_up() -> bool:
        return await _misses(viewer) - before >= len(viewers_headers)

    async def reached_origin() -> bool:
        return len(origin.requests_for(path)) >= in_flight

    try:
        assert await _until(all_looked_up), "not every viewer reached the cache lookup"
        # Not asserted here: when the edge wrongly holds requests back, the bodies say so.
        await _until(reached_origin, 3.0)
        await asyncio.sleep(0.05)  # time for a request that should not go to the origin
    finally:
        gate.set()
    return list(await asyncio.gather(*tasks))


COOKIES = [{"Cookie": f"session={name}"} for name in ("alice", "bob", "carol")]
AUTHORIZATIONS = [{"Authorization": f"Bearer {name}"} for name in ("alice", "bob", "carol")]


async def test_caching_disabled_with_all_viewer_gives_each_viewer_its_own_page(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/me"] = OriginResponse(gate=asyncio.Event(), echo="Cookie")
    viewer = await start_edge(on_policies(origin.port, **managed(CACHING_DISABLED, ALL_VIEWER)))
    responses = await concurrent(viewer, origin, "/me", COOKIES, in_flight=3)
    assert [r.text for r in responses] == [f"page for {h['Cookie']}" for h in COOKIES]
    assert [r.headers["x-cache"] for r in responses] == [MISS] * 3
    assert len(origin.requests_for("/me")) == 3


@pytest.mark.parametrize(
    "answer",
    [
        {"Cache-Control": "private"},
        {"Cache-Control": "no-store"},
        {"Cache-Control": "max-age=60", "Set-Cookie": "seen=1; Path=/"},
    ],
    ids=["private", "no-store", "set-cookie"],
)
@pytest.mark.parametrize(
    ("echo", "viewers_headers"),
    [("Cookie", COOKIES), ("Authorization", AUTHORIZATIONS)],
    ids=["cookies", "authorization"],
)
async def test_forwarded_cookies_or_authorization_are_never_collapsed(
    origin: RecordingOrigin,
    start_edge: StartEdge,
    answer: dict[str, str],
    echo: str,
    viewers_headers: list[dict[str, str]],
):
    """CachingOptimized + AllViewer: cookies and Authorization reach the origin but not the
    key, so the origin may answer each viewer its own page under one key."""
    origin.responses["/me"] = OriginResponse(headers=answer, gate=asyncio.Event(), echo=echo)
    viewer = await start_edge(on_policies(origin.port, **managed(CACHING_OPTIMIZED, ALL_VIEWER)))
    responses = await concurrent(viewer, origin, "/me", viewers_headers, in_flight=3)
    assert [r.text for r in responses] == [f"page for {h[echo]}" for h in viewers_headers]
    assert [r.headers["x-cache"] for r in responses] == [MISS] * 3
    assert len(origin.requests_for("/me")) == 3


@pytest.mark.parametrize(
    "cache_control", ["private", "no-store", "no-cache", "max-age=0", "s-maxage=0"]
)
async def test_an_answer_not_stored_fresh_is_not_given_to_the_waiters(
    origin: RecordingOrigin, start_edge: StartEdge, cache_control: str
):
    """The behavior allows collapsing; the answer says it is not for everyone (Min TTL 0):
    the waiters each go to the origin with their own request once it arrives."""
    origin.responses["/me"] = OriginResponse(
        headers={"Cache-Control": cache_control}, gate=asyncio.Event(), echo="X-Viewer"
    )
    viewer = await start_edge(on_policies(origin.port, **PER_ANSWER))
    viewers_headers = [{"X-Viewer": name} for name in ("alice", "bob", "carol")]
    responses = await concurrent(viewer, origin, "/me", viewers_headers, in_flight=1)
    assert [r.text for r in responses] == [f"page for {h['X-Viewer']}" for h in viewers_headers]
    assert len(origin.requests_for("/me")) == 3


async def test_a_waiter_with_other_varied_headers_shares_the_object(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/v"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Vary": "X-Viewer"},
        gate=asyncio.Event(),
        echo="X-Viewer",
    )
    viewer = await start_edge(on_policies(origin.port, **PER_ANSWER))
    first = asyncio.ensure_future(viewer.get("/v", headers={"X-Viewer": "alice"}))

    async def leader_at_origin() -> bool:
        return len(origin.requests_for("/v")) == 1

    assert await _until(leader_at_origin), "the first viewer did not reach the origin"
    others = [{"X-Viewer": "alice"}, {"X-Viewer": "carol"}]
    same, other = await concurrent(viewer, origin, "/v", others, in_flight=1)
    leader = await first
    assert (leader.text, leader.headers["x-cache"]) == ("page for alice", MISS)
    assert (same.text, same.headers["x-cache"]) == ("page for alice", HIT)
    # The key alone tells objects apart (DG understanding-the-cache-key; what an origin
    # request policy forwards is not in it): Vary splits nothing, carol shares alice's object.
    assert (other.text, other.headers["x-cache"]) == ("page for alice", HIT)
    assert len(origin.requests_for("/v")) == 1


async def test_cacheable_answers_still_collapse(origin: RecordingOrigin, start_edge: StartEdge):
    """CachingOptimized without an origin request policy: cookies are neither in the key nor
    forwarded, so viewers with different cookies share one fetch of one object."""
    origin.responses["/hot"] = OriginResponse(gate=asyncio.Event(), echo="Cookie")
    viewer = await start_edge(on_policies(origin.port, **managed(CACHING_OPTIMIZED)))
    viewers_headers = [{"Cookie": f"session={n}"} for n in range(5)]
    responses = await concurrent(viewer, origin, "/hot", viewers_headers, in_flight=1)
    assert {r.text for r in responses} == {"page for None"}  # the origin got no cookie
    caches = [r.headers["x-cache"] for r in responses]
    assert sorted(caches) == [HIT] * 4 + [MISS]
    assert len(origin.requests_for("/hot")) == 1


async def test_cacheable_answers_collapse_on_a_per_answer_behavior(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/hot"] = OriginResponse(gate=asyncio.Event())
    viewer = await start_edge(on_policies(origin.port, **PER_ANSWER))
    responses = await concurrent(viewer, origin, "/hot", [{}] * 4, in_flight=1)
    assert {r.text for r in responses} == {"origin body for /hot"}
    assert sorted(r.headers["x-cache"] for r in responses) == [HIT] * 3 + [MISS]
    assert len(origin.requests_for("/hot")) == 1
