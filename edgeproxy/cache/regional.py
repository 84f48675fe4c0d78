"""The regional tier: objects shared by every PoP of a distribution, kept in Redis.

Theory of operation
-------------------
CloudFront is two cache tiers: each edge PoP has its own cache (here ``CacheStore``, the L1)
in front of regional edge caches the PoPs share. ``RegionalTier`` is that shared tier on a
Redis server (``edge.regional_cache.redis``). It knows nothing about HTTP rules: what may be
stored is decided once, for both tiers, in ``misses.Misses._store``; this module only keeps
what it is given, under the same ``CacheKey`` (``cache/key.py``).

* An object is one Redis string: a 4-byte length, its metadata as JSON (status, headers,
  when it was stored, its TTL) and the body. Redis expires it when it is no longer fresh, so
  the regional tier holds fresh objects only. An object over ``max_object_bytes`` is not
  stored.
* The Redis key holds the key's invalidation target (path and query) then a digest of the
  whole cache key, so an invalidation path is a ``SCAN MATCH`` (``/a.jpg`` every variant of
  ``/a.jpg``; ``/img/*`` every path below ``/img/``), with no index to keep in step.
* ``lock`` is how concurrent misses for one key across PoPs and workers collapse into one
  origin fetch: ``SET NX PX`` with the lock timeout, so a holder that dies frees it.
* ``invalidate`` removes the objects and publishes the paths; every PoP's ``listen`` removes
  them from its L1 and acknowledges, and ``invalidate`` waits (bounded) for the
  acknowledgements of every PoP that got the message.

Redis down or slow: every call is bounded by ``timeout``; a failure answers as a miss (or
"not locked"), is logged once per outage, and Redis is left alone for ``retry_after``
seconds before the next call tries again, so a dead Redis costs viewers nothing after the
first timeout. The tier recovers by itself on the first call that succeeds.

This is the one module of the cache that talks to a socket (through the redis client).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from edgeproxy.cache.key import CacheKey
from edgeproxy.cache.store import CachedObject
from edgeproxy.cache.ttl import Freshness
from edgeproxy.messages import EdgeResponse

log = logging.getLogger("edgeproxy.regional")

T = TypeVar("T")

_LENGTH = struct.Struct("!I")
# Compare-and-delete: only the holder's token frees a lock (another PoP's is left alone).
_UNLOCK = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_SCAN_COUNT = 500
ACK_WAIT_S = 2.0  # how long an invalidation waits for every PoP's acknowledgement
_POLL_S = 0.01


@dataclass(slots=True)
class RegionalStats:
    """Counters for /stats: what this PoP asked of the regional tier."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    rejected: int = 0  # over max_object_bytes
    errors: int = 0  # calls that failed or timed out
    invalidations: int = 0  # objects removed by invalidations from this PoP
    available: bool = True

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def _escape(text: str) -> str:
    """``text`` matched literally by a Redis glob pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


def encode(obj: CachedObject) -> bytes:
    meta = {
        "status": obj.status,
        "reason": obj.reason,
        "headers": obj.headers,
        "stored_at": obj.stored_at,
        "ttl": obj.ttl,
        "swr": obj.stale_while_revalidate,
        "sie": obj.stale_if_error,
        "head_only": obj.head_only,
    }
    head = orjson.dumps(meta)
    return _LENGTH.pack(len(head)) + head + obj.body


def decode(blob: bytes) -> CachedObject:
    """The stored object; ValueError when ``blob`` is not one (bounded, typed fields)."""
    (length,) = _LENGTH.unpack_from(blob)
    meta: Any = orjson.loads(blob[_LENGTH.size : _LENGTH.size + length])
    body = blob[_LENGTH.size + length :]
    headers = [(str(name), str(value)) for name, value in meta["headers"]]
    fresh = Freshness(
        float(meta["ttl"]),
        float(meta["swr"]),
        None if meta["sie"] is None else float(meta["sie"]),
    )
    response = EdgeResponse(int(meta["status"]), headers, bytes(body), str(meta["reason"]))
    obj = CachedObject.from_response(response, float(meta["stored_at"]), fresh)
    obj.head_only = bool(meta["head_only"])
    return obj


class RegionalTier:
    """The shared tier on one Redis database; see the module docstring."""

    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        timeout: float,
        max_object_bytes: int,
        lock_timeout: float,
        retry_after: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.max_object_bytes = max_object_bytes
        self.lock_timeout = lock_timeout
        self.retry_after = retry_after
        self.clock = clock
        self.instance = os.urandom(8).hex()  # tells this process's messages from others'
        self.stats = RegionalStats()
        self._prefix = f"edgeproxy:{namespace}"
        self._channel = f"{self._prefix}:invalidations"
        self._redis: Redis = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._unlock = self._redis.register_script(_UNLOCK)
        self._retry_at = 0.0

    # -- objects ---------------------------------------------------------------------------

    def _object_key(self, key: CacheKey, kind: str = "o") -> str:
        """``<prefix>:o:<target>\\0<digest of the whole key>`` (``lock`` for its lock)."""
        digest = hashlib.sha256(orjson.dumps(list(key))).hexdigest()[:32]
        return f"{self._prefix}:{kind}:{key.target}\x00{digest}"

    async def get(self, key: CacheKey) -> CachedObject | None:
        """The fresh object under ``key``, or None (also when Redis is unavailable)."""
        blob = await self._call(lambda: self._redis.get(self._object_key(key)), None)
        if blob is None:
            self.stats.misses += 1
            return None
        try:
            obj = decode(blob)
        except (ValueError, KeyError, TypeError, struct.error):
            log.warning("regional tier: an unreadable object under %s, ignored", key.target)
            self.stats.misses += 1
            return None
        if not obj.is_fresh(self.clock()):
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return obj

    async def put(self, key: CacheKey, obj: CachedObject) -> bool:
        """Store ``obj`` until it is no longer fresh; False when it is over
        ``max_object_bytes``, already stale, or Redis is unavailable."""
        blob = encode(obj)
        if len(blob) > self.max_object_bytes:
            self.stats.rejected += 1
            return False
        fresh_ms = int((obj.stored_at + obj.ttl - self.clock()) * 1000)
        if fresh_ms <= 0:
            return False
        done = await self._call(
            lambda: self._redis.set(self._object_key(key), blob, px=fresh_ms), None
        )
        if done:
            self.stats.stores += 1
        return bool(done)

    # -- collapsing across PoPs ------------------------------------------------------------

    def _lock_key(self, key: CacheKey) -> str:
        return self._object_key(key, "lock")

    async def lock(self, key: CacheKey) -> str | None:
        """A token when this caller should fetch (it holds the lock, or Redis is unavailable
        and every PoP fetches for itself); None when another caller holds it."""
        token = f"{self.instance}:{os.urandom(8).hex()}"
        ms = int(self.lock_timeout * 1000)
        unavailable = object()
        got = await self._call(
            lambda: self._redis.set(self._lock_key(key), token, nx=True, px=ms), unavailable
        )
        return None if got is None else token

    async def locked(self, key: CacheKey) -> bool:
        """Whether another caller still holds the lock (False when Redis is unavailable)."""
        return bool(await self._call(lambda: self._redis.exists(self._lock_key(key)), 0))

    async def unlock(self, key: CacheKey, token: str) -> None:
        await self._call(lambda: self._unlock(keys=[self._lock_key(key)], args=[token]), 0)

    async def wait_for(self, key: CacheKey) -> CachedObject | None:
        """While another caller holds the lock: its object once stored, or None when the lock
        goes without one (the answer was not for sharing, or the holder died: the lock
        expired) or after ``lock_timeout``."""
        deadline = time.monotonic() + self.lock_timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
            if not await self.locked(key):
                return await self.get(key)  # stored just before the lock went, or nothing
        return None

    # -- invalidation ----------------------------------------------------------------------

    async def invalidate(self, paths: Iterable[str]) -> tuple[int, int, int]:
        """Remove what ``paths`` name from Redis and every PoP's L1 (their ``listen``):
        (objects removed here, PoPs that got the message, PoPs that acknowledged)."""
        paths = list(paths)
        removed = 0
        for path in paths:
            removed += await self._call(partial(self._delete_matching, path), 0)
        self.stats.invalidations += removed
        message_id = os.urandom(8).hex()
        message = orjson.dumps({"id": message_id, "paths": paths, "from": self.instance})
        reached = int(await self._call(lambda: self._redis.publish(self._channel, message), 0))
        acked = await self._acknowledged(message_id, reached)
        return removed, reached, acked

    async def _delete_matching(self, path: str) -> int:
        target = f"{self._prefix}:o:"
        pattern = (
            target + _escape(path[:-1]) + "*"
            if path.endswith("*")
            else target + _escape(path) + "\x00*"
        )
        removed = 0
        async for name in self._redis.scan_iter(match=pattern, count=_SCAN_COUNT):
            removed += int(await self._redis.delete(name))
        return removed

    async def _acknowledged(self, message_id: str, reached: int) -> int:
        acks = f"{self._prefix}:acks:{message_id}"
        deadline = time.monotonic() + ACK_WAIT_S
        count = 0
        while reached:
            count = int(await self._call(lambda: self._redis.llen(acks), 0))
            if count >= reached or time.monotonic() > deadline:
                break
            await asyncio.sleep(_POLL_S)
        return count

    async def listen(self, on_paths: Callable[[list[str]], Awaitable[int]]) -> None:
        """Run until cancelled: each invalidation published by any PoP (this one included)
        is applied to the L1 through ``on_paths`` and acknowledged. Reconnects by itself."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                    if message is not None:
                        await self._apply(message.get("data"), on_paths)
            except (RedisError, OSError) as exc:
                self._down(exc)  # viewers' calls find out for themselves: not gated by this
                await asyncio.sleep(self.retry_after)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _apply(self, data: object, on_paths: Callable[[list[str]], Awaitable[int]]) -> None:
        try:
            message: Any = orjson.loads(data) if isinstance(data, bytes) else None
            paths = [p for p in message["paths"] if isinstance(p, str) and p.startswith("/")]
            message_id = str(message["id"])
        except (ValueError, KeyError, TypeError):
            log.warning("regional tier: an unreadable invalidation message, ignored")
            return
        await on_paths(paths)
        acks = f"{self._prefix}:acks:{message_id}"
        await self._call(lambda: self._redis.rpush(acks, self.instance), 0)
        await self._call(lambda: self._redis.expire(acks, 60), 0)

    # -- outages ---------------------------------------------------------------------------

    async def _call(self, operation: Callable[[], Awaitable[Any]], default: Any) -> Any:
        """``operation`` within ``timeout``; ``default`` when it fails, or while Redis is
        left alone after a failure."""
        if not self.stats.available and time.monotonic() < self._retry_at:
            return default
        try:
            result = await asyncio.wait_for(operation(), self.timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(exc)
            return default
        if not self.stats.available:
            self.stats.available = True
            log.warning("regional tier: Redis at %s answers again", self.url)
        return result

    def _failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + self.retry_after
        self._down(exc)

    def _down(self, exc: BaseException) -> None:
        self.stats.errors += 1
        if self.stats.available:
            self.stats.available = False
            log.warning(
                "regional tier: Redis at %s unavailable (%s); serving from this PoP's cache "
                "and the origin until it answers again",
                self.url,
                exc.__class__.__name__,
            )

    async def close(self) -> None:
        await self._redis.aclose()
