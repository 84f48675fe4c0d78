"""The cache's disk tier: objects too large for memory, kept as files within a byte budget.

Theory of operation
-------------------
CloudFront caches GET responses up to 50 GB (Developer Guide, "Quotas": maximum cacheable
file size per HTTP GET response); the memory tier (``cache/store.py``) holds objects up to
``edge.cache.max_object_bytes``, and the origin client streams larger ones. Such a stream is
copied here as it passes to its first viewer (``DiskWriter``): chunk by chunk, never held
whole. Only a body that arrived whole is kept (``DiskWriter.commit``): an origin that dies
mid-body, a viewer that leaves early, or a body that differs from its Content-Length leaves
nothing behind (``DiskWriter.abort``), so no viewer is ever served a partial object.

A hit is read back as a ``DiskBody``: a stream of bounded chunks (``READ_CHUNK``), opened when
the response is made, so an object evicted or invalidated while a viewer reads it is still
read whole (the name goes, the open file stays). ``DiskBody.part`` seeks for a Range.

* the files of one run live in a folder of their own under ``edge.cache.disk.folder``
  (``run-<pid>-<random>``), locked while the run lives: several worker processes share the
  folder, and at start a run removes every folder no live run holds. A previous run's files
  are never trusted; they are wiped;
* the budget (``max_bytes``) counts file bytes; the least recently used objects are removed
  first to make room; an object larger than the budget, or than CloudFront's limit, is not
  written at all;
* an object is removed when its key is stored again, invalidated, evicted, or looked up once
  expired past every window in which it could still be served (``ttl`` +
  ``stale-while-revalidate`` + ``stale-if-error``) with no validator (ETag, Last-Modified) to
  revalidate it by [inf: a file is worth keeping only while it can be served or revalidated].

The index (key → ``CachedObject`` without its body) lives in memory; ``cache/store.py`` is its
only user and keeps the rule of what goes to which tier.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from edgeproxy.cache.key import CacheKey
from edgeproxy.messages import Headers, header_value

if TYPE_CHECKING:
    from edgeproxy.cache.store import CachedObject

# CloudFront's largest cacheable GET response (Developer Guide, "Quotas", 2025: 50 GB).
MAX_CACHEABLE_OBJECT = 50 * 1024**3
READ_CHUNK = 256 * 1024  # bytes read from a file per step: a viewer's memory is bounded by it
_LOCK = ".lock"


class DiskBody:
    """A stored object's body as a response stream; ``part`` gives one range of it."""

    def __init__(self, path: Path, size: int) -> None:
        self._file: IO[bytes] | None = path.open("rb")
        self.size = size
        self._left = size

    def __aiter__(self) -> DiskBody:
        return self

    async def __anext__(self) -> bytes:
        data = self._read(min(READ_CHUNK, self._left))
        if not data:
            await self.aclose()
            raise StopAsyncIteration
        self._left -= len(data)
        return data

    async def part(self, first: int, last: int) -> AsyncIterator[bytes]:
        """Bytes ``first``..``last`` (inclusive), then the file is closed."""
        try:
            if self._file is not None:
                self._file.seek(first)
            left = last - first + 1
            while left > 0:
                data = self._read(min(READ_CHUNK, left))
                if not data:
                    return
                left -= len(data)
                yield data
        finally:
            await self.aclose()

    def _read(self, count: int) -> bytes:
        # Small reads of a local file (usually from the page cache) on the loop: a thread
        # per chunk would cost more than the read.
        return self._file.read(count) if self._file is not None and count > 0 else b""

    async def aclose(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class DiskWriter:
    """One object being copied to disk as it streams; ``commit`` keeps it, ``abort`` drops
    it. Either is final; a writer neither committed nor aborted holds only a temporary file."""

    def __init__(self, tier: DiskTier, key: CacheKey, obj: CachedObject, limit: int) -> None:
        self._tier = tier
        self._key = key
        self._obj = obj
        self._limit = limit
        self._path = tier.new_path()
        self._file: IO[bytes] | None = self._path.open("wb")
        self.size = 0
        self.on_commit: Callable[[CacheKey], None] | None = None  # told once it is kept

    def write(self, data: bytes) -> None:
        """Append ``data``; past the limit the copy is abandoned (the viewer still gets it)."""
        if self._file is None:
            return
        self.size += len(data)
        if self.size > self._limit:
            self.abort()
            return
        self._file.write(data)

    def commit(self) -> bool:
        """The body arrived whole: keep it, when its size is what the origin announced."""
        if self._file is None:
            return False
        self._file.close()
        self._file = None
        declared = header_value(self._obj.headers, "content-length")
        if declared is not None and declared != str(self.size):
            self._path.unlink(missing_ok=True)
            return False
        self._obj.headers = _with_length(self._obj.headers, self.size)
        kept = self._tier.admit(self._key, self._obj, self._path, self.size)
        if kept and self.on_commit is not None:
            self.on_commit(self._key)
        return kept

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._path.unlink(missing_ok=True)


class DiskTier:
    """Objects on disk by cache key within ``max_bytes``; see the module docstring."""

    def __init__(
        self, folder: Path, max_bytes: int, on_evict: Callable[[CacheKey], None] | None = None
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        _wipe_abandoned(folder)
        self.folder = folder / f"run-{os.getpid()}-{secrets.token_hex(4)}"
        self.folder.mkdir()
        self._lock: IO[str] | None = (self.folder / _LOCK).open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.max_bytes = max_bytes
        self._on_evict = on_evict
        self._objects: OrderedDict[CacheKey, CachedObject] = OrderedDict()
        self._serial = 0
        self.bytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, key: CacheKey) -> bool:
        return key in self._objects

    def keys(self) -> Iterator[CacheKey]:
        return iter(list(self._objects))

    def new_path(self) -> Path:
        self._serial += 1
        return self.folder / f"{self._serial:012d}"

    def writer(self, key: CacheKey, obj: CachedObject, length: int | None) -> DiskWriter | None:
        """A writer for an object of ``length`` bytes (None: not announced), or None when it
        could never be kept."""
        limit = min(self.max_bytes, MAX_CACHEABLE_OBJECT)
        if length is not None and length > limit:
            return None
        return DiskWriter(self, key, obj, limit)

    def admit(self, key: CacheKey, obj: CachedObject, path: Path, size: int) -> bool:
        """Index a complete file, making room by evicting the least recently used."""
        self.remove(key)
        while self._objects and self.bytes + size > self.max_bytes:
            old_key, old = self._objects.popitem(last=False)
            self._forget(old)
            self.evictions += 1
            if self._on_evict is not None:
                self._on_evict(old_key)
        if self.bytes + size > self.max_bytes:
            path.unlink(missing_ok=True)
            return False
        obj.disk, obj.size = path, size
        self._objects[key] = obj
        self.bytes += size
        return True

    def get(self, key: CacheKey, now: float) -> CachedObject | None:
        """The object under ``key``, marked as recently used; None (and the file removed)
        once no window of it is left (module docstring)."""
        obj = self.peek(key, now)
        if obj is not None:
            self._objects.move_to_end(key)
        return obj

    def peek(self, key: CacheKey, now: float) -> CachedObject | None:
        obj = self._objects.get(key)
        if obj is not None and not _worth_keeping(obj, now):
            self.remove(key)
            return None
        return obj

    def update(self, key: CacheKey, obj: CachedObject) -> None:
        """Replace the stored headers and freshness of ``key`` (a 304 refresh); same file."""
        if key in self._objects:
            self._objects[key] = obj
            self._objects.move_to_end(key)

    def remove(self, key: CacheKey) -> bool:
        obj = self._objects.pop(key, None)
        if obj is None:
            return False
        self._forget(obj)
        return True

    def _forget(self, obj: CachedObject) -> None:
        self.bytes -= obj.size
        if obj.disk is not None:
            obj.disk.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove this run's files (the folder of a run that died is wiped by the next)."""
        self._objects.clear()
        self.bytes = 0
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def _worth_keeping(obj: CachedObject, now: float) -> bool:
    """Still servable (fresh or within a stale window), or revalidatable (it has a
    validator, so a 304 can bring it back without the body)."""
    window = obj.ttl + obj.stale_while_revalidate + (obj.stale_if_error or 0.0)
    return now - obj.stored_at < window or obj.etag is not None or obj.last_modified is not None


def _with_length(headers: Headers, size: int) -> Headers:
    kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return [*kept, ("Content-Length", str(size))]


def _wipe_abandoned(folder: Path) -> None:
    """Remove what no live run holds: the folders of earlier runs and stray files."""
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name.startswith("run-"):
            if _held(entry):
                continue
            shutil.rmtree(entry, ignore_errors=True)


def _held(run: Path) -> bool:
    try:
        with (run / _LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(lock, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False
