"""The edge's object store: bounded in bytes, LRU, invalidation by path.

Theory of operation
-------------------
``CacheStore`` maps a ``CacheKey`` (``cache/key.py``) to a ``CachedObject``. It knows nothing
about HTTP rules: whether and for how long to store is ``cache/ttl.py``'s answer, what the key is
is ``cache/key.py``'s. The store only keeps objects within a byte budget:

* every entry's size is what it really holds in memory (``object_size``: body and header
  text plus the measured CPython overhead of the bytes, strings, tuples, the entry and its
  key; header names are interned), computed once on ``put``; the sum never exceeds
  ``max_bytes``. Measured for 16 KB bodies with 8-16 headers: 10-16 % above the body and
  header bytes, and the count within 0.5 % of tracemalloc's. cachetools ``LRUCache``
  evicts least recently used objects first; ``get`` counts as a use;
* an object over ``max_object_bytes`` is not stored (``put`` returns False) and any older
  copy under that key is dropped, since the origin has moved on;
* ``get`` returns stale objects too: the pipeline revalidates them (reference 7.8) or serves
  them stale (7.4), so freshness is the caller's question (``CachedObject.is_fresh``);
* GET and HEAD share a key (only OPTIONS is keyed by method), so an object stored from a
  HEAD's answer, which has no body, is marked ``head_only``: ``get`` and ``peek`` with a
  method give it to HEADs only (``CachedObject.serves``);
* ``invalidate`` takes a CloudFront invalidation path (reference 7.14): an exact path, or a
  prefix ending in ``*``. It matches the key's path plus query string, so ``/a.jpg`` removes
  every header/cookie variant of ``/a.jpg`` but not ``/a.jpg?v=2``; ``/a.jpg*`` removes
  those as well. An index ``target → keys`` makes an exact path one dict lookup; a
  wildcard walks the stored paths in steps (``invalidation``), so the loop is never held
  for long.

Objects over ``max_object_bytes`` (which the origin client streams) go to the disk tier when
there is one (``cache/disk.py``): ``writer`` gives the copy to make while the stream passes,
``get``/``peek`` look there after memory, and removal (replaced, invalidated, deleted) reaches
both tiers. ``put`` and ``writer`` are the one place that decides which tier an object goes
to. A disk object's ``response()`` is a stream of its file.

Request collapsing, which waiters may be answered from what one fetch stored, is
``collapsing.py``'s.

The clock is injected (``clock``), so tests move time instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from sys import intern
from typing import TypedDict

from cachetools import Cache, LRUCache

from edgeproxy.cache.conditional import merge_304_headers
from edgeproxy.cache.disk import DiskBody, DiskTier, DiskWriter
from edgeproxy.cache.key import CacheKey
from edgeproxy.cache.ttl import Freshness
from edgeproxy.messages import EdgeResponse, Header, Headers

# What an entry really costs in CPython 3.11 beyond the bytes of its body and header text,
# measured with tracemalloc (docs/caching.md, "Memory"): the budget counts these, so
# ``max_bytes`` bounds the memory the cache holds, not just the payload.
BYTES_OVERHEAD = 33  # a bytes object's header (sys.getsizeof(b""))
# Per header: its (name, value) tuple, the value's str header and its list slot; names are
# interned when stored, so a name's text is shared, yet counted per entry to stay on the safe
# side. (An ASCII str costs 49 bytes + its length.)
HEADER_OVERHEAD = 56 + 49 + 8
# Per entry: the CachedObject, its header list, the LRU's three dict entries (data, size,
# order), the invalidation index, the CacheKey tuple and its own strings' headers.
OBJECT_OVERHEAD = 760
# Stored paths an invalidation looks at per step (about 3 ms of work).
INVALIDATION_STEP = 500


def object_size(body: bytes, headers: Iterable[Header], key: CacheKey | None = None) -> int:
    """Bytes an entry counts against the store's budget: what it really holds in memory."""
    header_bytes = sum(len(k) + len(v) + HEADER_OVERHEAD for k, v in headers)
    key_bytes = len(key.host) + len(key.uri) + len(key.query) + len(key.cookies) if key else 0
    return len(body) + BYTES_OVERHEAD + header_bytes + key_bytes + OBJECT_OVERHEAD


@dataclass(slots=True)
class CachedObject:
    """A stored response. ``headers`` is shared: copy it before changing it (``response``)."""

    status: int
    reason: str
    headers: Headers
    body: bytes
    stored_at: float  # clock time it was stored or last revalidated
    ttl: float  # seconds fresh after ``stored_at``
    etag: str | None = None
    last_modified: str | None = None
    stale_while_revalidate: float = 0.0
    stale_if_error: float | None = None  # None: the origin did not say
    size: int = 0  # set by ``CacheStore.put``
    disk: Path | None = None  # the body's file in the disk tier (``body`` is then empty)
    head_only: bool = False  # a HEAD's answer: headers without the body (``serves``)

    @classmethod
    def from_response(
        cls, response: EdgeResponse, now: float, fresh: Freshness | float
    ) -> CachedObject:
        """What to store for ``response``, with the validators revalidation needs (7.8).

        ``fresh`` is ``ttl.freshness``'s answer, or just a TTL (no stale-* windows)."""
        if not isinstance(fresh, Freshness):
            fresh = Freshness(float(fresh))
        etag = last_modified = None
        for name, value in response.headers:
            lname = name.lower()
            if lname == "etag":
                etag = value
            elif lname == "last-modified":
                last_modified = value
        return cls(
            response.status,
            response.reason,
            [(intern(name), value) for name, value in response.headers],
            response.body,
            now,
            fresh.ttl,
            etag,
            last_modified,
            fresh.stale_while_revalidate,
            fresh.stale_if_error,
        )

    def age(self, now: float) -> float:
        """Seconds since stored or revalidated (the ``Age`` header is its integer part)."""
        return max(0.0, now - self.stored_at)

    def is_fresh(self, now: float) -> bool:
        return now - self.stored_at < self.ttl

    def serves(self, method: str) -> bool:
        """Whether this object may answer a request with ``method``."""
        return method == "HEAD" or not self.head_only

    def may_serve_while_revalidating(self, now: float) -> bool:
        """Within ``stale-while-revalidate``: serve stale now, refresh in the background."""
        return now - self.stored_at < self.ttl + self.stale_while_revalidate

    def may_serve_on_error(self, now: float, default_window: float) -> bool:
        """Stale but usable when the origin fails: ``stale-if-error``, else ``default_window``
        (CloudFront serves stale for the error caching min TTL, reference 7.4, 7.11)."""
        window = default_window if self.stale_if_error is None else self.stale_if_error
        return now - self.stored_at < self.ttl + window

    def response(self) -> EdgeResponse:
        """A response to send: its own header list, the body shared (bytes are immutable),
        or a stream of the file for an object of the disk tier."""
        if self.disk is not None:
            stream = DiskBody(self.disk, self.size)
            return EdgeResponse(self.status, list(self.headers), b"", self.reason, stream)
        return EdgeResponse(self.status, list(self.headers), self.body, self.reason)


@dataclass(slots=True)
class CacheStats:
    """Counters for the admin API and flow tests (Varnish-style hit/miss assertions)."""

    hits: int = 0  # get found a fresh object
    misses: int = 0  # get found nothing, or a stale object
    stores: int = 0  # objects put
    evictions: int = 0  # objects dropped to stay within max_bytes
    bytes: int = 0  # bytes held now
    entries: int = 0  # objects held now
    refreshes: int = 0  # stale objects revalidated by a 304
    invalidations: int = 0  # objects removed by invalidation paths
    rejected: int = 0  # puts refused: object over max_object_bytes
    disk_bytes: int = 0  # bytes of the disk tier's files now
    disk_entries: int = 0  # objects on disk now

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class CacheEntry(TypedDict):
    """One row of the admin API's cache listing; JSON-ready (the key becomes an array)."""

    key: CacheKey
    uri: str
    status: int
    size: int
    age: float
    ttl: float
    fresh: bool


class _LRU(LRUCache[CacheKey, CachedObject]):
    """``LRUCache`` that reports the objects it evicts, so the store can keep its index."""

    def __init__(self, maxsize: int, on_evict: Callable[[CacheKey], None]) -> None:
        super().__init__(maxsize, getsizeof=_stored_size)
        self._on_evict = on_evict

    def popitem(self) -> tuple[CacheKey, CachedObject]:
        key, obj = super().popitem()
        self._on_evict(key)
        return key, obj


def _stored_size(obj: CachedObject) -> int:
    return obj.size


class CacheStore:
    """Objects by cache key within ``max_bytes``; see the module docstring."""

    def __init__(
        self,
        max_bytes: int,
        max_object_bytes: int,
        clock: Callable[[], float] = time.time,
        disk: Callable[[Callable[[CacheKey], None]], DiskTier] | None = None,
    ) -> None:
        self._max_object_bytes = min(max_object_bytes, max_bytes)
        self._clock = clock
        self._lru = _LRU(max_bytes, self._evicted)
        self._by_target: dict[str, set[CacheKey]] = {}
        self.stats = CacheStats()
        # ``disk`` opens the tier, given the store's eviction callback.
        self._disk = disk(self._evicted) if disk is not None else None

    def __len__(self) -> int:
        return len(self._lru) + (len(self._disk) if self._disk is not None else 0)

    def __contains__(self, key: CacheKey) -> bool:
        return key in self._lru or (self._disk is not None and key in self._disk)

    def close(self) -> None:
        """Remove the disk tier's files (the memory tier needs nothing)."""
        if self._disk is not None:
            self._disk.close()
            self._sync()

    @property
    def max_bytes(self) -> int:
        return int(self._lru.maxsize)

    def get(self, key: CacheKey, method: str = "GET") -> CachedObject | None:
        """The object under ``key`` that serves ``method``, fresh or stale, marked as recently
        used; counts hit/miss."""
        obj = self._lru.get(key)
        if obj is None and self._disk is not None:
            obj = self._disk.get(key, self._clock())
            self._sync()
        if obj is not None and not obj.serves(method):
            obj = None
        if obj is not None and obj.is_fresh(self._clock()):
            self.stats.hits += 1
        else:
            self.stats.misses += 1
        return obj

    def peek(self, key: CacheKey, method: str = "GET") -> CachedObject | None:
        """The object under ``key`` that serves ``method``, without touching LRU order or
        counters."""
        try:
            obj: CachedObject | None = Cache.__getitem__(self._lru, key)  # does not reorder
        except KeyError:
            obj = self._disk.peek(key, self._clock()) if self._disk is not None else None
        if obj is None:
            return None
        return obj if obj.serves(method) else None

    def put(self, key: CacheKey, obj: CachedObject) -> bool:
        """Store ``obj``; False (and nothing stored) when it is over ``max_object_bytes``."""
        size = object_size(obj.body, obj.headers, key)
        if key in self:
            self._remove(key)
        if size > self._max_object_bytes and self._disk is not None:
            return self._put_on_disk(key, obj)
        if size > self._max_object_bytes:
            self.stats.rejected += 1
            self._sync()
            return False
        obj.size = size
        self._lru[key] = obj
        self._by_target.setdefault(key.target, set()).add(key)
        self.stats.stores += 1
        self._sync()
        return True

    def writer(self, key: CacheKey, obj: CachedObject, length: int | None) -> DiskWriter | None:
        """A copy to make of a streamed object (over ``max_object_bytes``) as it passes, kept
        under ``key`` once whole (``DiskWriter.commit``); None without a disk tier, or when
        ``length`` is past what it may hold. An older copy under ``key`` is dropped now: the
        origin has moved on."""
        if key in self:
            self._remove(key)
            self._sync()
        if self._disk is None:
            self.stats.rejected += 1
            return None
        writer = self._disk.writer(key, obj, length)
        if writer is None:
            self.stats.rejected += 1
        else:
            writer.on_commit = self._committed
        return writer

    def _put_on_disk(self, key: CacheKey, obj: CachedObject) -> bool:
        writer = self.writer(key, obj, len(obj.body))
        if writer is None:
            return False
        writer.write(obj.body)
        obj.body = b""
        return writer.commit()

    def _committed(self, key: CacheKey) -> None:
        self._by_target.setdefault(key.target, set()).add(key)
        self.stats.stores += 1
        self._sync()

    def refresh(
        self, key: CacheKey, headers: Iterable[Header], fresh: Freshness
    ) -> CachedObject | None:
        """Apply a 304 to a stored object (reference 7.8): headers updated, clock restarted."""
        old = self._lru.get(key)
        if old is None and self._disk is not None:
            old = self._disk.get(key, self._clock())
        if old is None:
            return None
        merged = merge_304_headers(old.headers, headers)
        new = CachedObject(
            old.status,
            old.reason,
            merged,
            old.body,
            self._clock(),
            fresh.ttl,
            _first(merged, "etag"),
            _first(merged, "last-modified"),
            fresh.stale_while_revalidate,
            fresh.stale_if_error,
            head_only=old.head_only,
        )
        if old.disk is not None and self._disk is not None:  # same file, new headers
            new.disk, new.size = old.disk, old.size
            self._disk.update(key, new)
            self.stats.refreshes += 1
            return new
        if not self.put(key, new):
            return None
        self.stats.stores -= 1  # a refresh is not a new store
        self.stats.refreshes += 1
        return new

    def delete(self, key: CacheKey) -> bool:
        """Remove one object; False when there was none."""
        if key not in self:
            return False
        self._remove(key)
        self._sync()
        return True

    def invalidate(self, path_pattern: str) -> int:
        """Remove what a CloudFront invalidation path names (reference 7.14); returns count."""
        return sum(self.invalidation(path_pattern))

    def invalidation(self, path_pattern: str) -> Iterator[int]:
        """``invalidate`` in steps of ``INVALIDATION_STEP`` stored paths, yielding how many
        objects each step removed: a caller on the event loop lets viewers in between (a
        ``/*`` over 200,000 objects is a second of work). The paths are those held when it
        began; an object stored under one of them before its step comes is removed too."""
        pattern = path_pattern if path_pattern.startswith("/") else f"/{path_pattern}"
        if "*" in pattern[:-1]:
            raise ValueError(f"'*' is allowed only as the last character: {path_pattern!r}")
        if not pattern.endswith("*"):
            yield self._remove_targets([pattern])
            return
        prefix, targets = pattern[:-1], list(self._by_target)
        for start in range(0, len(targets), INVALIDATION_STEP):
            step = targets[start : start + INVALIDATION_STEP]
            yield self._remove_targets([t for t in step if t.startswith(prefix)])

    def _remove_targets(self, targets: list[str]) -> int:
        removed = 0
        for target in targets:
            for key in list(self._by_target.get(target, ())):
                self._remove(key)
                removed += 1
        self.stats.invalidations += removed
        self._sync()
        return removed

    def clear(self) -> int:
        """Remove everything (``/*``); returns how many objects went."""
        return self.invalidate("/*")

    def entries(self) -> list[CacheEntry]:
        """Every object, least recently used first, for the admin API."""
        now = self._clock()
        rows = []
        disk_keys = list(self._disk.keys()) if self._disk is not None else []
        for key in [*list(self._lru), *disk_keys]:
            obj = self.peek(key)
            if obj is None:
                continue
            age, fresh = obj.age(now), obj.is_fresh(now)
            rows.append(
                CacheEntry(
                    key=key,
                    uri=key.uri,
                    status=obj.status,
                    size=obj.size,
                    age=age,
                    ttl=obj.ttl,
                    fresh=fresh,
                )
            )
        return rows

    def _remove(self, key: CacheKey) -> None:
        if key in self._lru:
            del self._lru[key]
        if self._disk is not None:
            self._disk.remove(key)
        self._unindex(key)

    def _evicted(self, key: CacheKey) -> None:
        self._unindex(key)
        self.stats.evictions += 1

    def _unindex(self, key: CacheKey) -> None:
        keys = self._by_target.get(key.target)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_target[key.target]

    def _sync(self) -> None:
        self.stats.bytes = int(self._lru.currsize)
        self.stats.entries = len(self._lru)
        if self._disk is not None:
            self.stats.disk_bytes = self._disk.bytes
            self.stats.disk_entries = len(self._disk)


def _first(headers: Iterable[Header], lname: str) -> str | None:
    for name, value in headers:
        if name.lower() == lname:
            return value
    return None
