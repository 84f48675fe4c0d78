"""The regional tier on a real redis-server, through real edges acting as two PoPs of one
distribution (same config and Redis, different ``edge.pop``).

CloudFront: edge PoPs each have a cache, in front of regional edge caches they share; the
origin-facing functions run at the regional tier, so a regional hit runs neither
origin-request nor origin-response (DG HowCloudFrontWorks.html#CloudFrontRegionaledgecaches,
"Regional edge caches"; lambda-cloudfront-trigger-events.html). A hit there is
``cdn-cache-hit`` with ``cdn-hit-layer;desc="REC"`` (DG understanding-response-headers-
policies.html#server-timing-header, "Example - cache hit")."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import redis
from conftest import OriginResponse, RecordingOrigin, StartEdge, Viewer, distribution, handler
from prometheus_client.parser import text_string_to_metric_families
from redis_server import RedisServer

from edgeproxy.config.distribution import OriginShield
from edgeproxy.config.loading import load_config
from edgeproxy.config.overrides import ConfigOverrides
from edgeproxy.errors import ConfigError

ORIGIN_FACING = [
    {"event_type": "origin-request", "handler": handler("flow_passthrough.py")},
    {"event_type": "origin-response", "handler": handler("flow_mark.py:origin_response")},
]
HIT, MISS = "Hit from cloudfront", "Miss from cloudfront"
TIMING = {
    "name": "timing",
    "server_timing_headers_config": {"enabled": True, "sampling_rate": 100},
}


def pop(origin: RecordingOrigin, redis_url: str, name: str, **behavior: Any) -> dict[str, Any]:
    document = distribution(origin.port, **behavior)
    document["edge"]["pop"] = name
    document["edge"]["regional_cache"] = {"redis": redis_url, "timeout": 0.5}
    return document


async def two_pops(
    start_edge: StartEdge, origin: RecordingOrigin, url: str, **behavior: Any
) -> tuple[Viewer, Viewer]:
    a = await start_edge(pop(origin, url, "IAD89-C1", **behavior))
    b = await start_edge(pop(origin, url, "FRA56-P2", **behavior))
    return a, b


def stored_keys(server: RedisServer) -> list[bytes]:
    with redis.Redis(port=server.port) as client:
        return [k for k in client.keys("edgeproxy:*:o:*")]


async def test_an_object_fetched_at_pop_a_is_a_regional_hit_at_pop_b(
    origin: RecordingOrigin, start_edge: StartEdge, redis_server: RedisServer
):
    a, b = await two_pops(
        start_edge,
        origin,
        redis_server.url,
        lambda_function_association=ORIGIN_FACING,
        response_headers_policy=TIMING,
    )
    first = await a.get("/shared")
    assert first.headers["x-cache"] == MISS
    assert first.headers["x-amz-cf-pop"] == "IAD89-C1"
    assert await a.last_stages() == ["origin-request", "origin-response"]

    regional = await b.get("/shared")
    assert regional.status_code == 200
    assert regional.text == "origin body for /shared"
    assert regional.headers["x-amz-cf-pop"] == "FRA56-P2"
    assert regional.headers["x-cache"] == HIT
    assert regional.headers["age"] == "0"
    assert regional.headers["x-origin-response"] == "ran"  # stored as origin-response left it
    assert 'cdn-hit-layer;desc="REC"' in regional.headers["server-timing"]
    assert await b.last_stages() == []  # no origin-facing function at B
    assert (await b.exchanges())[-1]["source"] == "regional"
    assert len(origin.requests_for("/shared")) == 1

    again = await b.get("/shared")  # the regional hit filled B's own cache
    assert 'cdn-hit-layer;desc="EDGE"' in again.headers["server-timing"]
    assert (await b.exchanges())[-1]["source"] == "cache"
    stats = await b.stats()
    assert stats["pop"] == "FRA56-P2"
    assert stats["regional"]["hits"] == 1
    assert len(origin.requests_for("/shared")) == 1


async def test_200_concurrent_misses_over_two_pops_make_one_origin_request(
    origin: RecordingOrigin, start_edge: StartEdge, redis_server: RedisServer
):
    gate = asyncio.Event()
    origin.responses["/hot"] = OriginResponse(gate=gate)
    a, b = await two_pops(start_edge, origin, redis_server.url)
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(timeout=20, limits=limits) as client:
        calls = [client.get((a if i % 2 else b).running.url("/hot")) for i in range(200)]
        pending = asyncio.gather(*calls)
        await asyncio.sleep(0.5)  # every viewer is in flight, one fetch holds the origin
        gate.set()
        answers = await pending
    assert {r.status_code for r in answers} == {200}
    assert {r.text for r in answers} == {"origin body for /hot"}
    assert len(origin.requests_for("/hot")) == 1
    assert {r.headers["x-amz-cf-pop"] for r in answers} == {"IAD89-C1", "FRA56-P2"}


async def test_an_invalidation_at_a_removes_the_object_at_b_and_in_redis(
    origin: RecordingOrigin, start_edge: StartEdge, redis_server: RedisServer
):
    a, b = await two_pops(start_edge, origin, redis_server.url)
    await a.get("/gone.html")
    assert (await b.get("/gone.html")).headers["x-cache"] == HIT  # now in B's cache too
    assert len(stored_keys(redis_server)) == 1

    made = await a.client.post(
        f"{a.running.admin_url}/invalidations", json={"paths": ["/gone.html"]}
    )
    assert made.status_code == 201
    record = made.json()
    assert record["status"] == "Completed"
    assert record["pops"] == record["acknowledged"] == 2
    assert record["regional_removed"] == 1
    assert stored_keys(redis_server) == []
    assert (await b.client.get(f"{b.running.admin_url}/cache")).json() == []

    after = await b.get("/gone.html")
    assert after.headers["x-cache"] == MISS
    assert len(origin.requests_for("/gone.html")) == 2


async def test_pops_keep_answering_while_redis_is_down_and_use_it_again_after(
    origin: RecordingOrigin, start_edge: StartEdge, redis_server: RedisServer
):
    a, b = await two_pops(start_edge, origin, redis_server.url)
    assert (await a.get("/before")).headers["x-cache"] == MISS

    redis_server.stop()
    assert (await a.get("/before")).headers["x-cache"] == HIT  # A's own cache
    during_a, during_b = await a.get("/during"), await b.get("/during")
    assert (during_a.status_code, during_b.status_code) == (200, 200)
    assert during_b.headers["x-cache"] == MISS  # from the origin, no regional tier
    assert len(origin.requests_for("/during")) == 2
    assert (await a.stats())["regional"]["available"] is False

    redis_server.start()  # empty: nothing was persisted
    await asyncio.sleep(1.1)  # the tier leaves a failed Redis alone for a second
    assert (await a.get("/after")).headers["x-cache"] == MISS
    assert (await b.get("/after")).headers["x-cache"] == HIT
    assert (await b.exchanges())[-1]["source"] == "regional"
    assert len(origin.requests_for("/after")) == 1
    assert (await a.stats())["regional"]["available"] is True


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "private, max-age=60"},
        {"Cache-Control": "no-store"},
    ],
)
async def test_a_private_answer_never_reaches_redis(
    origin: RecordingOrigin,
    start_edge: StartEdge,
    redis_server: RedisServer,
    headers: dict[str, str],
):
    origin.responses["/mine"] = OriginResponse(headers=headers)
    a, b = await two_pops(start_edge, origin, redis_server.url)
    await a.get("/mine")
    assert stored_keys(redis_server) == []
    assert (await b.get("/mine")).headers["x-cache"] == MISS
    assert len(origin.requests_for("/mine")) == 2


async def test_a_pop_whose_lock_holder_died_fetches_itself_once_the_lock_expires(
    origin: RecordingOrigin, start_edge: StartEdge, redis_server: RedisServer
):
    a, b = await two_pops(start_edge, origin, redis_server.url)
    await a.get("/dead")  # learns the Redis key of the object, then plays a holder that died:
    with redis.Redis(port=redis_server.port) as client:
        (stored,) = client.keys("edgeproxy:*:o:/dead*")
        client.delete(stored)
        lock = stored.replace(b":o:", b":lock:", 1)
        client.set(lock, "a PoP that died", px=400)
    started = time.monotonic()
    answer = await b.get("/dead")
    waited = time.monotonic() - started
    assert answer.status_code == 200
    assert answer.headers["x-cache"] == MISS
    assert waited >= 0.3  # it waited for the holder until the lock expired
    assert len(origin.requests_for("/dead")) == 2


def test_a_bad_redis_url_refuses_to_start_naming_the_key(write_config: Any):
    document = distribution(8080)
    document["edge"]["regional_cache"] = {"redis": "http://127.0.0.1:6379"}
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(document))
    assert "edge.regional_cache.redis" in str(caught.value)


# Origin Shield: "When it's enabled, CloudFront routes all requests through Origin Shield";
# the Region is required then (API Reference, OriginShield:
# https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_OriginShield.html).
SHIELD = {"enabled": True, "origin_shield_region": "us-east-2"}


def shielded(document: dict[str, Any], shield: dict[str, Any] = SHIELD) -> dict[str, Any]:
    document["distribution"]["origin"][0]["origin_shield"] = shield
    return document


async def test_an_origin_shield_is_the_regional_tier_in_front_of_its_origin(
    origin: RecordingOrigin, start_edge: StartEdge, redis_server: RedisServer
):
    a = await start_edge(shielded(pop(origin, redis_server.url, "IAD89-C1")))
    b = await start_edge(shielded(pop(origin, redis_server.url, "FRA56-P2")))
    assert (await a.get("/shielded")).headers["x-cache"] == MISS
    assert (await b.get("/shielded")).headers["x-cache"] == HIT
    assert (await b.exchanges())[-1]["source"] == "regional"
    assert len(origin.requests_for("/shielded")) == 1


def test_an_origin_shield_without_a_regional_tier_is_accepted_with_a_warning(
    write_config: Any,
):
    path = write_config(shielded(distribution(8080)))
    loaded = load_config(path)
    assert loaded.config.distribution.origin[0].origin_shield == OriginShield(
        enabled=True, origin_shield_region="us-east-2"
    )
    (warning,) = [w for w in loaded.warnings if "origin_shield" in w]
    assert warning.startswith("distribution.origin[0].origin_shield: no regional tier")
    assert "ignored" not in warning
    with_redis = load_config(path, overrides=ConfigOverrides(regional_cache="redis://h:1/0"))
    assert not [w for w in with_redis.warnings if "origin_shield" in w]
    disabled = load_config(write_config(shielded(distribution(8080), {"enabled": False})))
    assert not [w for w in disabled.warnings if "origin_shield" in w]


@pytest.mark.parametrize(
    ("shield", "where"),
    [
        ({"enabled": True}, "origin_shield.origin_shield_region"),
        ({"enabled": True, "origin_shield_region": "Ohio"}, "origin_shield.origin_shield_region"),
    ],
)
def test_an_enabled_origin_shield_needs_a_region_code(
    write_config: Any, shield: dict[str, Any], where: str
):
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(shielded(distribution(8080), shield)))
    assert f"distribution.origin[0].{where}" in str(caught.value)


def samples(text: str) -> dict[str, float]:
    """``name{label="v"}`` → value, for every sample of a Prometheus scrape."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


async def scrape(viewer: Viewer) -> dict[str, float]:
    return samples((await viewer.client.get(f"{viewer.running.admin_url}/metrics")).text)


async def test_metrics_say_which_tier_answered_and_count_the_regional_tier(
    origin: RecordingOrigin, start_edge: StartEdge, redis_server: RedisServer
):
    a, b = await two_pops(start_edge, origin, redis_server.url)
    await a.get("/counted")  # A: origin, stored in both tiers
    await b.get("/counted")  # B: the regional tier
    await b.get("/counted")  # B: its own cache
    at_a, at_b = await scrape(a), await scrape(b)
    assert at_a['edgeproxy_answered_by_total{source="origin"}'] == 1
    assert at_a["edgeproxy_regional_stores_total"] == 1
    assert at_a["edgeproxy_regional_hits_total"] == 0
    assert at_b['edgeproxy_answered_by_total{source="regional"}'] == 1
    assert at_b['edgeproxy_answered_by_total{source="cache"}'] == 1
    assert at_b["edgeproxy_regional_hits_total"] == 1
    assert at_b["edgeproxy_regional_errors_total"] == 0
    assert at_b["edgeproxy_regional_available"] == 1

    redis_server.stop()
    assert (await b.get("/while-down")).status_code == 200
    down = await scrape(b)
    assert down["edgeproxy_regional_errors_total"] >= 1
    assert down["edgeproxy_regional_available"] == 0
    assert down['edgeproxy_answered_by_total{source="origin"}'] == 1


async def test_without_a_regional_tier_there_are_no_regional_metrics(
    origin: RecordingOrigin, start_edge: StartEdge
):
    edge = await start_edge(distribution(origin.port))
    await edge.get("/alone")
    scraped = await scrape(edge)
    assert scraped['edgeproxy_answered_by_total{source="origin"}'] == 1
    assert not [name for name in scraped if name.startswith("edgeproxy_regional")]
    assert (await edge.stats())["regional"] is None


async def test_a_304_revalidation_at_one_pop_refreshes_the_regional_copy(
    origin: RecordingOrigin,
    start_edge: StartEdge,
    redis_server: RedisServer,
    clock: Any,
):
    # A 304 to CloudFront's revalidation makes the cached object fresh again (DG
    # Expiration.html: "CloudFront ... if the origin returns 304 Not Modified ... updates
    # the expiration"); the regional tier is the same cache seen from every PoP.
    origin.responses["/etag"] = OriginResponse(headers={"Cache-Control": "max-age=10"}, etag='"v1"')
    a, b = await two_pops(start_edge, origin, redis_server.url)
    assert (await a.get("/etag")).headers["x-cache"] == MISS
    clock.advance(11)  # stale at A and in the regional tier
    refreshed = await a.get("/etag")
    assert refreshed.headers["x-cache"] == "RefreshHit from cloudfront"
    assert origin.requests_for("/etag")[-1].headers["If-None-Match"] == '"v1"'
    at_b = await b.get("/etag")
    assert at_b.headers["x-cache"] == HIT
    assert (await b.exchanges())[-1]["source"] == "regional"
    assert len(origin.requests_for("/etag")) == 2  # the 200, then the 304: none from B
