"""The object store and the request collapser; a fake clock, no sleeping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeproxy.cache.key import CacheKey
from edgeproxy.cache.store import (
    BYTES_OVERHEAD,
    HEADER_OVERHEAD,
    OBJECT_OVERHEAD,
    CachedObject,
    CacheStore,
    object_size,
)
from edgeproxy.cache.ttl import Freshness
from edgeproxy.collapsing import Collapser
from edgeproxy.messages import EdgeResponse


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def k(uri: str, query: str = "", variant: str = "") -> CacheKey:
    return CacheKey("d.cloudfront.net", "", uri, query, (variant,) if variant else (), "", "")


def obj(body: bytes = b"x" * 100, ttl: float = 60.0, stored_at: float = 1000.0) -> CachedObject:
    return CachedObject(200, "OK", [("Content-Type", "text/plain")], body, stored_at, ttl)


def size_of(o: CachedObject, key: CacheKey) -> int:
    return object_size(o.body, o.headers, key)


# What an entry with an empty body and one short header costs: budgets below are built on it.
BASE = size_of(obj(b""), k("/0"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> CacheStore:
    return CacheStore(max_bytes=10_000, max_object_bytes=5_000, clock=clock)


# --- CachedObject -----------------------------------------------------------------------------


def test_age_and_freshness() -> None:
    o = obj(ttl=10, stored_at=100)
    assert o.age(105.5) == 5.5
    assert o.age(50) == 0.0
    assert o.is_fresh(109.9)
    assert not o.is_fresh(110)


def test_zero_ttl_is_never_fresh() -> None:
    assert not obj(ttl=0, stored_at=100).is_fresh(100)


def test_stale_windows() -> None:
    o = obj(ttl=10, stored_at=100)
    o.stale_while_revalidate = 5
    assert o.may_serve_while_revalidating(114)
    assert not o.may_serve_while_revalidating(115)
    assert o.may_serve_on_error(119, default_window=10)
    o.stale_if_error = 0
    assert not o.may_serve_on_error(111, default_window=10)


def test_from_response_reads_validators() -> None:
    response = EdgeResponse(
        200, [("ETag", '"v1"'), ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT")], b"b", "OK"
    )
    o = CachedObject.from_response(response, 7, Freshness(60, 5, 30))
    assert (o.etag, o.last_modified) == ('"v1"', "Mon, 01 Jan 2024 00:00:00 GMT")
    assert (o.ttl, o.stale_while_revalidate, o.stale_if_error, o.stored_at) == (60, 5, 30, 7)
    assert o.headers is not response.headers
    plain = CachedObject.from_response(response, 7, 60)
    assert (plain.ttl, plain.stale_while_revalidate, plain.stale_if_error) == (60.0, 0.0, None)


def test_response_copies_headers_not_body() -> None:
    o = obj()
    response = o.response()
    response.headers.append(("Age", "1"))
    assert ("Age", "1") not in o.headers
    assert response.body is o.body


def test_object_size() -> None:
    per_object = BYTES_OVERHEAD + OBJECT_OVERHEAD
    assert object_size(b"abc", [("A", "bc")]) == 3 + 1 + 2 + HEADER_OVERHEAD + per_object
    key = k("/path", query="q=1")
    with_key = object_size(b"abc", [("A", "bc")], key)
    assert with_key == object_size(b"abc", [("A", "bc")]) + len(key.host) + len("/path") + 3


def test_stored_header_names_are_interned() -> None:
    name = "".join(["X-", "Interned"])
    first = CachedObject.from_response(EdgeResponse(200, [(name, "1")], b""), 0, 1)
    second = CachedObject.from_response(EdgeResponse(200, [("X-Interned"[:], "2")], b""), 0, 1)
    assert first.headers[0][0] is second.headers[0][0]


# --- get / put / delete -------------------------------------------------------------------


def test_put_get(store: CacheStore) -> None:
    o = obj()
    assert store.put(k("/a"), o)
    assert store.get(k("/a")) is o
    assert store.get(k("/b")) is None
    assert o.size == size_of(o, k("/a"))
    assert store.stats.stores == 1
    assert (store.stats.hits, store.stats.misses) == (1, 1)
    assert (store.stats.entries, store.stats.bytes) == (1, o.size)


def test_get_returns_stale_and_counts_a_miss(store: CacheStore, clock: Clock) -> None:
    o = obj(ttl=10)
    store.put(k("/a"), o)
    clock.now += 11
    assert store.get(k("/a")) is o
    assert (store.stats.hits, store.stats.misses) == (0, 1)


def test_oversize_not_stored(store: CacheStore) -> None:
    assert not store.put(k("/big"), obj(b"x" * 5_000))
    assert k("/big") not in store
    assert store.stats.rejected == 1
    assert store.stats.bytes == 0


def test_oversize_replacement_drops_old_copy(store: CacheStore) -> None:
    store.put(k("/a"), obj())
    assert not store.put(k("/a"), obj(b"x" * 6_000))
    assert store.get(k("/a")) is None
    assert store.stats.bytes == 0


def test_max_object_bytes_above_budget_is_capped(clock: Clock) -> None:
    small = CacheStore(max_bytes=500, max_object_bytes=10_000, clock=clock)
    assert not small.put(k("/a"), obj(b"x" * 600))


def test_replace_same_key(store: CacheStore) -> None:
    store.put(k("/a"), obj(b"1" * 100))
    new = obj(b"2" * 200)
    store.put(k("/a"), new)
    assert store.get(k("/a")) is new
    assert store.stats.bytes == new.size
    assert store.stats.entries == 1
    assert store.stats.evictions == 0


def test_delete(store: CacheStore) -> None:
    store.put(k("/a"), obj())
    assert store.delete(k("/a"))
    assert not store.delete(k("/a"))
    assert store.stats.bytes == 0
    assert store.invalidate("/a") == 0  # index cleaned too


def test_peek_does_not_count_or_reorder(clock: Clock) -> None:
    store = CacheStore(max_bytes=3 * size_of(obj(), k("/1")), max_object_bytes=10_000, clock=clock)
    for name in ("/1", "/2", "/3"):
        store.put(k(name), obj())
    assert store.peek(k("/1")) is not None
    assert store.peek(k("/nope")) is None
    store.put(k("/4"), obj())  # /1 is still least recently used
    assert k("/1") not in store
    assert store.stats.hits == store.stats.misses == 0


# --- byte budget and LRU ------------------------------------------------------------------


def test_lru_evicts_least_recently_used(clock: Clock) -> None:
    one = size_of(obj(), k("/1"))
    store = CacheStore(max_bytes=3 * one, max_object_bytes=10_000, clock=clock)
    for name in ("/1", "/2", "/3"):
        store.put(k(name), obj())
    store.get(k("/1"))  # /2 becomes the least recently used
    store.put(k("/4"), obj())
    assert k("/2") not in store
    assert all(k(n) in store for n in ("/1", "/3", "/4"))
    assert store.stats.evictions == 1
    assert store.invalidate("/2") == 0  # evicted keys leave the index


def test_byte_budget_never_exceeded(clock: Clock) -> None:
    budget = 2 * BASE + 2_000
    store = CacheStore(max_bytes=budget, max_object_bytes=BASE + 1_500, clock=clock)
    for i in range(200):
        store.put(k(f"/{i}"), obj(b"x" * (37 * i % 1_300)))
        assert store.stats.bytes <= budget
        assert store.stats.bytes == sum(e["size"] for e in store.entries())
        assert store.stats.entries == len(store)
    assert store.stats.evictions > 0
    assert store.stats.stores == 200


def test_big_object_evicts_several(clock: Clock) -> None:
    budget = 4 * BASE + 400
    store = CacheStore(max_bytes=budget, max_object_bytes=budget, clock=clock)
    for i in range(4):
        store.put(k(f"/{i}"), obj(b"x" * 50))
    assert store.stats.entries == 4
    store.put(k("/big"), obj(b"x" * (2 * BASE + 300)))
    assert k("/big") in store
    assert store.stats.bytes <= budget
    assert store.stats.evictions >= 3


# --- invalidation ---------------------------------------------------------------------------


def fill(store: CacheStore) -> None:
    for key in (
        k("/images/a.jpg"),
        k("/images/a.jpg", variant="fr"),
        k("/images/a.jpg", query="v=2"),
        k("/images/b.jpg"),
        k("/images/sub/c.jpg"),
        k("/imagesX"),
        k("/index.html"),
    ):
        store.put(key, obj())


def test_invalidate_exact_removes_all_header_variants(store: CacheStore) -> None:
    fill(store)
    assert store.invalidate("/images/a.jpg") == 2
    assert k("/images/a.jpg", query="v=2") in store
    assert store.stats.invalidations == 2
    assert store.stats.entries == 5


def test_invalidate_exact_with_query(store: CacheStore) -> None:
    fill(store)
    assert store.invalidate("/images/a.jpg?v=2") == 1


def test_invalidate_trailing_star_covers_query_variants(store: CacheStore) -> None:
    fill(store)
    assert store.invalidate("/images/a.jpg*") == 3


def test_invalidate_directory_star(store: CacheStore) -> None:
    fill(store)
    assert store.invalidate("/images/*") == 5
    assert k("/imagesX") in store


def test_invalidate_prefix_star(store: CacheStore) -> None:
    fill(store)
    assert store.invalidate("/images*") == 6


def test_invalidate_everything(store: CacheStore) -> None:
    fill(store)
    assert store.invalidate("/*") == 7
    assert store.stats.bytes == 0
    assert store.entries() == []


def test_invalidate_adds_leading_slash(store: CacheStore) -> None:
    fill(store)
    assert store.invalidate("index.html") == 1


def test_invalidate_nothing(store: CacheStore) -> None:
    fill(store)
    assert store.invalidate("/nope") == 0


def test_invalidate_star_only_last(store: CacheStore) -> None:
    with pytest.raises(ValueError, match="last character"):
        store.invalidate("/images/*.jpg")


def test_clear(store: CacheStore) -> None:
    fill(store)
    assert store.clear() == 7


# --- refresh (304) and entries --------------------------------------------------------------


def test_refresh_restarts_clock_and_merges_headers(store: CacheStore, clock: Clock) -> None:
    headers = [("ETag", '"1"'), ("X-A", "old"), ("Content-Length", "3")]
    old = CachedObject(200, "OK", headers, b"abc", clock.now, 10)
    store.put(k("/a"), old)
    clock.now += 20
    update = [("X-A", "new"), ("ETag", '"2"'), ("Content-Length", "0")]
    new = store.refresh(k("/a"), update, Freshness(30))
    assert new is not None
    assert new.is_fresh(clock.now) and new.ttl == 30 and new.stored_at == clock.now
    assert new.body is old.body
    assert new.etag == '"2"'
    assert ("X-A", "new") in new.headers and ("X-A", "old") not in new.headers
    assert ("Content-Length", "3") in new.headers
    assert store.get(k("/a")) is new
    assert (store.stats.refreshes, store.stats.stores) == (1, 1)
    assert store.stats.bytes == new.size


def test_refresh_missing(store: CacheStore) -> None:
    assert store.refresh(k("/a"), [], Freshness(30)) is None


def test_entries_listing(store: CacheStore, clock: Clock) -> None:
    store.put(k("/a"), obj(ttl=10, stored_at=clock.now))
    store.put(k("/b", query="q=1"), obj(ttl=100, stored_at=clock.now))
    clock.now += 15
    rows = store.entries()
    assert [(r["uri"], r["key"].query, r["age"], r["ttl"], r["fresh"]) for r in rows] == [
        ("/a", "", 15.0, 10, False),
        ("/b", "q=1", 15.0, 100, True),
    ]
    assert all(r["size"] == size_of(obj(), r["key"]) and r["status"] == 200 for r in rows)
    json.dumps(rows)  # the admin API sends it as is
    assert json.loads(json.dumps(store.stats.as_dict()))["entries"] == 2


# --- Collapser ------------------------------------------------------------------------------


async def test_ten_concurrent_callers_share_one_fetch() -> None:
    collapser: Collapser[str] = Collapser()
    calls = 0
    release = asyncio.Event()

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        return "body"

    tasks = [asyncio.create_task(collapser.join("k", fetch)) for _ in range(10)]
    await asyncio.sleep(0)
    assert collapser.in_flight("k") and len(collapser) == 1
    release.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert [value for value, _ in results] == ["body"] * 10
    assert [shared for _, shared in results] == [False] + [True] * 9
    await asyncio.sleep(0)
    assert not collapser.in_flight("k") and len(collapser) == 0


async def test_exception_reaches_every_waiter() -> None:
    collapser: Collapser[str] = Collapser()
    calls = 0
    release = asyncio.Event()

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        raise ConnectionError("origin down")

    tasks = [asyncio.create_task(collapser.run("k", fetch)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, ConnectionError) for r in results)
    await asyncio.sleep(0)
    assert len(collapser) == 0


async def test_different_keys_fetch_separately() -> None:
    collapser: Collapser[int] = Collapser()
    calls: list[str] = []

    def factory(name: str) -> Callable[[], Awaitable[int]]:
        async def fetch() -> int:
            calls.append(name)
            await asyncio.sleep(0)
            return len(calls)

        return fetch

    a = asyncio.create_task(collapser.run("a", factory("a")))
    b = asyncio.create_task(collapser.run("b", factory("b")))
    await asyncio.gather(a, b)
    assert sorted(calls) == ["a", "b"]


async def test_after_completion_a_new_fetch_starts() -> None:
    collapser: Collapser[int] = Collapser()
    counter = 0

    async def fetch() -> int:
        nonlocal counter
        counter += 1
        return counter

    assert await collapser.run("k", fetch) == 1
    await asyncio.sleep(0)
    assert await collapser.run("k", fetch) == 2


async def test_cancelled_leader_does_not_cancel_the_fetch() -> None:
    collapser: Collapser[str] = Collapser()
    release = asyncio.Event()

    async def fetch() -> str:
        await release.wait()
        return "ok"

    leader = asyncio.create_task(collapser.run("k", fetch))
    await asyncio.sleep(0)
    follower = asyncio.create_task(collapser.run("k", fetch))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    release.set()
    assert await follower == "ok"
    assert leader.cancelled()


async def test_cancel_all() -> None:
    collapser: Collapser[str] = Collapser()

    async def fetch() -> str:
        await asyncio.Event().wait()
        return "never"

    waiter = asyncio.create_task(collapser.run("k", fetch))
    await asyncio.sleep(0)
    collapser.cancel_all()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0)
    assert len(collapser) == 0


async def test_exception_with_no_waiter_left_is_not_reported() -> None:
    collapser: Collapser[str] = Collapser()
    release = asyncio.Event()

    async def fetch() -> str:
        await release.wait()
        raise RuntimeError("nobody listens")

    waiter = asyncio.create_task(collapser.run("k", fetch))
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.sleep(0)
    release.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(collapser) == 0


# --- invariants under random operations -----------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "get", "delete", "invalidate", "tick"]),
        st.sampled_from(["/a", "/a/b", "/b", "/c"]),
        st.sampled_from(["", "v=1"]),
        st.integers(min_value=0, max_value=900),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_store_invariants(ops: list[tuple[str, str, str, int]]) -> None:
    clock = Clock()
    budget = 2 * BASE + 2_000
    store = CacheStore(max_bytes=budget, max_object_bytes=BASE + 800, clock=clock)
    rows = store.entries()
    for op, uri, query, n in ops:
        if op == "put":
            store.put(k(uri, query), obj(b"x" * n, ttl=5))
        elif op == "get":
            store.get(k(uri, query))
        elif op == "delete":
            store.delete(k(uri, query))
        elif op == "invalidate":
            store.invalidate(uri + ("*" if n % 2 else ""))
        else:
            clock.now += n / 100
        rows = store.entries()
        assert store.stats.bytes == sum(r["size"] for r in rows) <= budget
        assert store.stats.entries == len(rows) == len(store)
    assert store.invalidate("/*") == len(rows)  # the path index covers every object
    assert store.stats.bytes == 0


def test_budget_counts_what_entries_really_hold() -> None:
    """tracemalloc: the memory N stored 16 KB objects keep alive is within what the budget
    counts for them (docs/caching.md, Memory), so max_bytes bounds real memory."""
    import gc
    import os
    import tracemalloc

    noise = os.urandom(40_000)

    def fresh(text: str) -> str:  # a new str, as parsed from the wire
        return text.encode().decode()

    store = CacheStore(max_bytes=10**9, max_object_bytes=10**6)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(500):
        headers = [
            (fresh("Content-Type"), fresh("text/html")),
            (fresh("ETag"), fresh(f'"{i:x}"')),
            (fresh("Cache-Control"), fresh("max-age=60")),
            (fresh("Date"), fresh("Wed, 21 Oct 2015 07:28:00 GMT")),
        ]
        response = EdgeResponse(200, headers, noise[i : i + 16_384])
        store.put(k(fresh(f"/img/{i}.jpg")), CachedObject.from_response(response, 0, 60))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert held <= store.stats.bytes * 1.02
    assert store.stats.bytes <= held * 1.10  # and not wildly more
