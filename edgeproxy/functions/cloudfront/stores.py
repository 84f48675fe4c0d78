"""A CloudFront Function's code and its KeyValueStores, read from local files and checked
against CloudFront's limits once, where they are read (at start and on each save).

Limits (DG cloudfront-limits, kvs-with-functions-create-s3-kvp):
function code 10 KB; a store's import file 5 MB, its key 512 characters, its value 1,024
characters, no key twice.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeproxy.functions.folder_watch import FileWatch

log = logging.getLogger("edgeproxy.functions")

MAX_CODE_BYTES = 10 * 1024
MAX_STORE_FILE_BYTES = 5 * 1024 * 1024
MAX_KEY_CHARS = 512
MAX_VALUE_CHARS = 1024
RUNTIMES = ("cloudfront-js-1.0", "cloudfront-js-2.0")


def read_code(path: Path) -> str:
    """A function's code; ValueError naming what is wrong (CloudFront's
    FunctionSizeLimitExceeded past 10 KB)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_CODE_BYTES:
        raise ValueError(
            f"{path} is {len(data)} bytes: a CloudFront Function is at most 10 KB "
            "(FunctionSizeLimitExceeded)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None


def function_code_problem(path: Path) -> str | None:
    try:
        read_code(path)
    except ValueError as exc:
        return str(exc)
    return None


def read_store(path: Path) -> dict[str, str]:
    """A KeyValueStore's data from its import file ``{"data": [{"key": …, "value": …}]}``;
    ValueError naming the first problem."""
    try:
        size = path.stat().st_size
        if size > MAX_STORE_FILE_BYTES:
            raise ValueError(f"{path} is {size} bytes: a KeyValueStore file is at most 5 MB")
        document = json.loads(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f'{path}: must be {{"data": [{{"key": ..., "value": ...}}]}}')
    return _pairs(path, entries)


def _pairs(path: Path, entries: list[Any]) -> dict[str, str]:
    data: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: data[{index}]"
        if not isinstance(entry, dict) or set(entry) != {"key", "value"}:
            raise ValueError(f'{where} must be {{"key": ..., "value": ...}}')
        key, value = entry["key"], entry["value"]
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_CHARS:
            raise ValueError(f"{where}.key must be a string of 1 to 512 characters")
        if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
            raise ValueError(f"{where}.value must be a string of at most 1,024 characters")
        if key in data:
            raise ValueError(f"{where}.key {key!r} is there twice")
        data[key] = value
    return data


def store_file_problem(path: Path) -> str | None:
    try:
        read_store(path)
    except ValueError as exc:
        return str(exc)
    return None


def store_id(arn: str) -> str:
    """``arn:aws:cloudfront::123456789012:key-value-store/<id>`` → ``<id>``."""
    return arn.rpartition("/")[2]


# Versions of store data, unique in the edge: a store opened again by a config reload never
# reuses one, so the runtime process cannot mistake new data for what it holds.
_versions = itertools.count(1)


@dataclass
class KeyValueStore:
    """One store, read again when its file is saved (seen by ``folder_watch.FileWatch``, as
    function code is); a save that does not read keeps the data it had (and says why in the
    log), as a failed import leaves a store unchanged."""

    arn: str
    path: Path
    data: dict[str, str] = field(default_factory=dict)
    version: int = 0  # a new one with each read: the runtime process holds some version
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    _watch: FileWatch | None = None

    @property
    def id(self) -> str:
        return store_id(self.arn)

    def refresh(self) -> bool:
        """Read the file again when it changed since last read; True when the data did."""
        if self._watch is None:
            self._watch = FileWatch(self.path)
        if not self._watch.changed():
            return False
        try:
            data = read_store(self.path)
        except ValueError as exc:
            log.warning("KeyValueStore %s not reloaded: %s", self.arn, exc)
            return False
        self.data, self.version, self.updated = data, next(_versions), time.time()
        return True

    def meta(self) -> dict[str, Any]:
        """What ``kvs.meta()`` answers (DG kvs-with-functions-custom-methods)."""
        return {
            "creationDateTime": _iso(self.created),
            "lastUpdatedDateTime": _iso(self.updated),
            "keyCount": len(self.data),
        }


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


@dataclass
class CloudFrontFunction:
    """One CloudFront Function as the edge runs it: its name (from the ARN), code, runtime,
    and the stores it may read (its associated one is ``default_store``). With ``path``, the
    code is read again when the file is saved (``refresh``, before each call)."""

    arn: str
    code: str
    runtime: str = "cloudfront-js-2.0"
    stores: tuple[KeyValueStore, ...] = ()
    default_store: str | None = None  # the associated store's id
    path: Path | None = None
    _watch: FileWatch | None = None

    def __post_init__(self) -> None:
        if self.path is not None:
            self._watch = FileWatch(self.path)
            self._watch.changed()  # the code given is the file's as of now

    @property
    def name(self) -> str:
        return self.arn.rpartition("/")[2]

    def refresh(self) -> bool:
        """Read the code again when its file was saved; a save that does not read (over
        10 KB, not UTF-8, gone) keeps the code that ran, and says why in the log."""
        if self._watch is None or not self._watch.changed():
            return False
        assert self.path is not None
        try:
            code = read_code(self.path)
        except ValueError as exc:
            log.warning("CloudFront Function %s not reloaded: %s", self.name, exc)
            return False
        changed, self.code = code != self.code, code
        return changed

    @property
    def key(self) -> str:
        """Identifies this code in the runtime process: a saved file is loaded anew."""
        return f"{self.arn}#{self.runtime}#{self.default_store}#{hash(self.code)}"


def load_function(
    arn: str, path: Path, runtime: str, stores: dict[str, KeyValueStore], store_arn: str | None
) -> CloudFrontFunction:
    """The function of ``arn`` with its code from ``path``; with no store named and exactly
    one configured, that store is its own (as with a single association)."""
    code = read_code(path)
    if store_arn is None and len(stores) == 1:
        store_arn = next(iter(stores))
    default = store_id(store_arn) if store_arn is not None else None
    return CloudFrontFunction(arn, code, runtime, tuple(stores.values()), default, path)


def open_stores(files: dict[str, Path]) -> dict[str, KeyValueStore]:
    """Each configured store, read once now (the config check read them already)."""
    stores = {arn: KeyValueStore(arn, path) for arn, path in files.items()}
    for store in stores.values():
        store.refresh()
    return stores
