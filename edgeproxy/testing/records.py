"""What a test gets back from the edge: the viewer's response together with the exchange
record (the stages that ran, X-Cache, the origin fetches) and what the origin received.

The record is read from the edge's own history (the one ``GET /exchanges`` on the admin
listener lists), by the response's X-Amz-Cf-Id. Fields the edge does not record are None
or empty; ``ExchangeRecord.raw`` keeps the record as the edge wrote it, so fields added to
it later are readable before this module learns their names (``record["cache"]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDictProxy

from edgeproxy.testing.origin import ReceivedRequest

# Where a stage's entry may hold its name, its input (the event) and its output (the
# result), by the names an exchange record uses for them, the first one present wins.
_NAME_KEYS = ("stage", "name", "event_type")
_INPUT_KEYS = ("input", "event")
_OUTPUT_KEYS = ("output", "result")


def _first(entry: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((entry[k] for k in keys if k in entry), None)


@dataclass(frozen=True, slots=True)
class StageRun:
    """One stage that ran: its name (``viewer-request``…), and what it got and returned
    when the exchange record carries them (None otherwise)."""

    name: str
    input: Any = None
    output: Any = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, entry: Any) -> StageRun:
        """A stage entry of the record: a bare name, or a mapping with the name and more."""
        if isinstance(entry, Mapping):
            name = _first(entry, _NAME_KEYS)
            return cls(
                str(name), _first(entry, _INPUT_KEYS), _first(entry, _OUTPUT_KEYS), dict(entry)
            )
        return cls(str(entry))


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    """One exchange as the edge recorded it."""

    request_id: str
    method: str
    uri: str
    status: int
    x_cache: str
    stages: tuple[StageRun, ...]
    behavior: int | None
    origin_fetches: int
    error: str
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, record: Mapping[str, Any]) -> ExchangeRecord:
        behavior = record.get("behavior")
        return cls(
            request_id=str(record.get("request_id", "")),
            method=str(record.get("method", "")),
            uri=str(record.get("uri", "")),
            status=int(record.get("status", 0)),
            x_cache=str(record.get("x_cache", "")),
            stages=tuple(StageRun.parse(e) for e in record.get("stages", ())),
            behavior=behavior if isinstance(behavior, int) else None,
            origin_fetches=int(record.get("origin_fetches", 0)),
            error=str(record.get("error", "")),
            raw=dict(record),
        )

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def stage(self, name: str) -> StageRun | None:
        """The run of stage ``name`` (``"origin-request"``), None when it did not run."""
        return next((s for s in self.stages if s.name == name), None)

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


@dataclass(frozen=True, slots=True)
class Response:
    """The viewer's response: status, headers (case-insensitive, repeated names kept) and
    the body as received (decompressed when the edge compressed it)."""

    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    body: bytes
    url: str

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class EdgeResult:
    """A response and what the edge did to produce it."""

    response: Response
    exchange: ExchangeRecord | None  # None: the edge refused the request before recording
    origin_requests: tuple[ReceivedRequest, ...] = ()  # what a fake origin got from it

    # -- the response --------------------------------------------------------------------------

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.response.headers

    @property
    def body(self) -> bytes:
        return self.response.body

    @property
    def text(self) -> str:
        return self.response.text

    def json(self) -> Any:
        return self.response.json()

    @property
    def x_cache(self) -> str:
        """``Miss from cloudfront``, ``Hit from cloudfront``, ``LambdaGeneratedResponse…``"""
        return self.response.headers.get("X-Cache", "")

    # -- what the edge did ---------------------------------------------------------------------

    @property
    def stages(self) -> list[str]:
        """The stages that ran, in order (``["viewer-request", "origin-request", …]``)."""
        return self.exchange.stage_names if self.exchange is not None else []

    def stage(self, name: str) -> StageRun | None:
        return self.exchange.stage(name) if self.exchange is not None else None

    @property
    def origin_reached(self) -> bool:
        """Whether this exchange made a request to an origin (a fake one or any other)."""
        fetches = self.exchange.origin_fetches if self.exchange is not None else 0
        return bool(self.origin_requests) or fetches > 0

    @property
    def origin_request(self) -> ReceivedRequest | None:
        """What the fake origin received for this exchange (the last, after a failover)."""
        return self.origin_requests[-1] if self.origin_requests else None
