"""What every validation rule looks at: the ``Subject`` (a handler's result, its kind and
what the edge sent the handler) and ``HeaderScan``, one pass over the result's header maps
whose findings the header rows of ``validation.RULES`` read.

A result is one of three kinds: a ``request`` (returned by viewer-request or origin-request),
a ``generated`` response (a request stage's result with a ``status`` key) or a ``response``
(returned by origin-response or viewer-response).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from edgeproxy.functions.header_map import HeaderMap, headers_map, is_disallowed_header
from edgeproxy.messages import (
    BAD_VALUE_CHAR,
    HEADER_NAME,
    EdgeRequest,
    EdgeResponse,
    Headers,
    title_case,
)
from edgeproxy.stages import Stage


class Kind(Enum):
    REQUEST = "request"
    GENERATED = "generated response"
    RESPONSE = "response"


@dataclass(slots=True)
class Subject:
    """What a rule looks at: the result and what the edge sent the handler.

    Mutable only to memoise what several rows read (the header maps, the returned values).
    """

    stage: Stage
    kind: Kind
    result: Any
    original_headers: Headers  # of the request (request stages) or the response (response stages)
    request: EdgeRequest | None = None
    response: EdgeResponse | None = None
    include_body: bool = False
    _scan: HeaderScan | None = field(default=None, init=False, repr=False)

    def scan(self) -> HeaderScan:
        """Every header map of the result, looked at once (``scan_headers``)."""
        if self._scan is None:
            # A generated response was sent no headers; anything else is compared with them.
            sent = None if self.kind is Kind.GENERATED else headers_map(self.original_headers)
            self._scan = scan_headers(_find_header_maps(self), sent)
        return self._scan

    def returned_values(self) -> dict[str, list[str]]:
        """The result's ``headers`` as lower-case name → values (after the header rows)."""
        found = self.scan()
        if found.unchanged and not found.returned:  # as sent: keys are lower-case already
            for name, entries in self.result["headers"].items():
                found.returned[name] = [entry["value"] for entry in entries]
        return found.returned


@dataclass(slots=True)
class HeaderScan:
    """What one pass over the result's header maps found: for each header row of the table,
    its first problem in iteration order (None: none), and the returned header values.

    One pass instead of one per row: the rows run in table order and report the first row
    with a problem, and once every earlier row found nothing, a row's first problem is the
    same whether it was looked for alone or alongside the others."""

    not_object: str | None = None
    not_array: str | None = None
    not_string: str | None = None
    bad_name: str | None = None
    bad_key: str | None = None
    bad_char: str | None = None
    disallowed: str | None = None
    unchanged: bool = False  # ``headers`` exactly as sent: ``returned`` and size not filled in
    returned: dict[str, list[str]] = field(default_factory=dict)  # ``headers``: name → values
    wire_bytes: int = 0  # every entry as "Name: value\r\n" on the wire


PREFIX = "Lambda function result failed validation, "
HEADERS_PREFIX = "The Lambda function returned an invalid entry in the headers object, "


def _find_header_maps(s: Subject) -> Iterator[tuple[str, Any]]:
    result = s.result
    if result.get("headers") is not None:
        yield "headers", result["headers"]
    origin = result.get("origin") if s.stage is Stage.ORIGIN_REQUEST else None
    if s.kind is Kind.REQUEST and isinstance(origin, dict):
        for kind in ("custom", "s3"):
            spec = origin.get(kind)
            if isinstance(spec, dict) and spec.get("customHeaders") is not None:
                yield f"origin.{kind}.customHeaders", spec["customHeaders"]


def scan_headers(maps: Iterator[tuple[str, Any]], sent: HeaderMap | None = None) -> HeaderScan:
    """Look at every header map once. ``headers`` exactly as ``sent`` passes as a whole (the
    rules judge what a handler wrote); otherwise the common case, a valid entry, is checked
    inline and anything else goes to ``_scan_name`` / ``_scan_entry``, which word it."""
    found = HeaderScan()
    token, bad_char = HEADER_NAME.fullmatch, BAD_VALUE_CHAR.search
    for where, header_map in maps:
        if type(header_map) is not dict:
            found.not_object = found.not_object or (
                f"{HEADERS_PREFIX}{where} must be an object, not {type(header_map).__name__}"
            )
            continue
        returned = found.returned if where == "headers" else None
        if returned is not None and header_map == sent:
            found.unchanged = True
            continue
        for name, entries in header_map.items():
            if type(name) is str and token(name) and not is_disallowed_header(name.lower()):
                name_ok = True
            else:
                name_ok = _scan_name(found, where, name)
            if type(entries) is not list:
                found.not_array = found.not_array or (
                    f"{HEADERS_PREFIX}Each header entry in the headers object must be an array, "
                    f"header :{name}"
                )
                continue
            for entry in entries:
                value = entry.get("value") if type(entry) is dict else None
                key = entry.get("key") if value is not None else None
                if (
                    type(value) is not str
                    or (key is not None and not (type(key) is str and token(key)))
                    or bad_char(value)
                ):
                    value = _scan_entry(found, where, name, entry)
                    if value is None:
                        continue
                if not name_ok:
                    continue
                found.wire_bytes += len(name) + len(value) + 4
                if returned is not None:
                    returned.setdefault(name.lower(), []).append(value)
    return found


def _scan_name(found: HeaderScan, where: str, name: Any) -> bool:
    """Note what is wrong with a map key; True when it is a valid (if disallowed) name."""
    if not isinstance(name, str) or not HEADER_NAME.fullmatch(name):
        found.bad_name = found.bad_name or (
            f"{PREFIX}the function returned an invalid header name in {where}: {name!r}"
        )
        return False
    if found.disallowed is None and is_disallowed_header(name.lower()):
        found.disallowed = (
            f"{PREFIX}the function tried to add a blacklisted header in {where}, "
            f"headerName : {name.lower()}"
        )
    return True


def _scan_entry(found: HeaderScan, where: str, name: Any, entry: Any) -> str | None:
    """The entry's value when it is a string (else None, noted)."""
    value = entry.get("value") if isinstance(entry, dict) else None
    if not isinstance(value, str):
        found.not_string = found.not_string or (
            f"{HEADERS_PREFIX}the value of each header value must be of string or "
            f"array of string type, header :{name} has one or more entries that "
            "are not objects with a string value"
        )
        return None
    key = entry.get("key")
    if key is not None and (not isinstance(key, str) or not HEADER_NAME.fullmatch(key)):
        found.bad_key = found.bad_key or (
            f"{PREFIX}the function returned an invalid header key in {where}.{name}: {key!r}"
        )
    if found.bad_char is None:
        bad = BAD_VALUE_CHAR.search(value)
        if bad:
            header = key if isinstance(key, str) and key else title_case(str(name))
            found.bad_char = (
                "Lambda function result validation failed, the function returned an invalid "
                f"header, invalid character : '%{ord(bad.group()):02X}' in header value, "
                f"headerName : {header}"
            )
    return value
