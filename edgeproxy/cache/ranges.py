"""Range requests answered from a whole cached object (reference 7.10, RFC 9110 14).

``apply_range(status, headers, body, request_headers, method=...)`` returns the answer to
send instead of the stored object, or None to send the object as it is (200). The decision,
in order:

=======================================================  ===================================
situation                                                answer
=======================================================  ===================================
not GET; stored status not 200; no Range header          None (the object as it is)
Range not ``bytes=`` or not parseable (RFC 9110 14.2)    None
If-Range present and not matching (strong ETag compare,  None: the whole current object
or exactly the Last-Modified date)
every range unsatisfiable (starts past the end)          416, ``Content-Range: bytes */N``
one satisfiable range                                    206, ``Content-Range: bytes a-b/N``
several, ascending and not overlapping                   206 ``multipart/byteranges``
several, overlapping or not ascending (reference 7.10:   None: CloudFront sends the whole
"non-ascending, overlapping or invalid ranges")          object with 200
more than ``MAX_RANGES`` ranges                          None [inf: a bound against abuse]
=======================================================  ===================================

A 416 is never cached (reference 7.11): it is an answer, not an object; the caller serves it
and stores nothing.

On a miss (CloudFront Developer Guide, "How CloudFront processes partial requests for an object
(range GETs)": CloudFront forwards the request, "may request a larger range", serves and caches
what the origin returns; an origin that ignores ranges has the whole object served for that
request and cut for later ones) the edge asks the origin for the largest range,
``WIDENED_RANGE`` (``widened_range``), so an origin that supports ranges returns the whole object
as a 206, made a 200 object again by ``whole_from_partial``; a 200 instead says the origin
ignored the Range, and that viewer gets the whole object. An object held as a stream (too
large for memory: an origin stream or a file of the disk tier) is cut by ``apply_range_stream``
for one range; several ranges of it get the whole object [inf: a bound on this edge].

Ranges apply to the stored bytes, so a compressed variant is cut in its
encoded form, as any HTTP cache does. A multipart body carries each part's Content-Type and
Content-Range; its boundary is random unless the caller passes one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from edgeproxy.messages import EdgeResponse, Headers, decimal_value, header_value

MAX_RANGES = 50
# A position past any object the edge can hold (50 GB, DG Quotas; docs/fidelity.md): larger
# numbers count as this one, so a range starting there is unsatisfiable and one ending there
# stops at the end, however many digits the viewer wrote.
BEYOND_ANY_OBJECT = 10**18
# What the edge asks the origin for when a viewer's Range misses: the whole object, as a range.
WIDENED_RANGE = "bytes=0-"
# Headers that describe the whole body: rewritten for a part.
_BODY_HEADERS = frozenset({"content-length", "content-range", "content-type"})


@dataclass(frozen=True, slots=True)
class ByteRange:
    first: int
    last: int  # inclusive

    @property
    def length(self) -> int:
        return self.last - self.first + 1


_Spec = tuple[int | None, int | None]  # (first, last) as written; suffix is (None, n)


def parse_range(value: str) -> list[_Spec] | None:
    """``bytes=0-99, 200-, -50`` → [(0, 99), (200, None), (None, 50)]; None if invalid."""
    unit, eq, sets = value.partition("=")
    if not eq or unit.strip().lower() != "bytes":
        return None
    specs: list[_Spec] = []
    for part in sets.split(","):
        spec = _parse_spec(part.strip())
        if spec is None:
            return None
        specs.append(spec)
    return specs or None


def _parse_spec(text: str) -> _Spec | None:
    first_text, dash, last_text = text.partition("-")
    first = decimal_value(first_text, BEYOND_ANY_OBJECT)
    last = decimal_value(last_text, BEYOND_ANY_OBJECT)
    if not dash or (first is None and first_text) or (last is None and last_text):
        return None  # a number that is not 1*DIGIT
    if first is None:
        return None if last is None else (None, last)
    if last is not None and last < first:
        return None  # "invalid" (RFC 9110 14.1.1)
    return first, last


def resolve(specs: list[_Spec], size: int) -> list[ByteRange]:
    """The satisfiable ranges of ``specs`` for an object of ``size`` bytes, as written."""
    out: list[ByteRange] = []
    for first, last in specs:
        if first is None:
            if last and size:
                out.append(ByteRange(max(size - (last or 0), 0), size - 1))
        elif first < size:
            out.append(ByteRange(first, size - 1 if last is None else min(last, size - 1)))
    return out


def _ascending(ranges: list[ByteRange]) -> bool:
    return all(a.last < b.first for a, b in zip(ranges, ranges[1:], strict=False))


def if_range_matches(if_range: str, headers: Headers) -> bool:
    """RFC 9110 13.1.5: an entity tag matches the stored ETag by strong comparison (a weak
    tag never matches); a date matches the stored Last-Modified exactly."""
    value = if_range.strip()
    if value.startswith('"') or value.startswith("W/"):
        etag = header_value(headers, "etag")
        return not value.startswith("W/") and etag is not None and etag == value
    return header_value(headers, "last-modified") == value


def _chosen(
    status: int, headers: Headers, size: int, request_headers: Headers, method: str
) -> list[ByteRange] | None:
    """The ranges to answer (an empty list: unsatisfiable), or None for the whole object."""
    if method != "GET" or status != 200:
        return None
    range_value = header_value(request_headers, "range")
    if range_value is None:
        return None
    if_range = header_value(request_headers, "if-range")
    if if_range is not None and not if_range_matches(if_range, headers):
        return None
    specs = parse_range(range_value)
    if specs is None or len(specs) > MAX_RANGES:
        return None
    ranges = resolve(specs, size)
    if len(ranges) > 1 and not _ascending(ranges):
        return None  # reference 7.10: the whole object, 200
    return ranges


def apply_range(
    status: int,
    headers: Headers,
    body: bytes,
    request_headers: Headers,
    *,
    method: str = "GET",
    boundary: str | None = None,
) -> EdgeResponse | None:
    """The answer to a Range request from a stored object (see the module docstring)."""
    ranges = _chosen(status, headers, len(body), request_headers, method)
    if ranges is None:
        return None
    if not ranges:
        return _unsatisfiable(headers, len(body))
    if len(ranges) == 1:
        return _single(headers, body, ranges[0])
    return _multipart(headers, body, ranges, boundary or secrets.token_hex(16))


class RangedStream(Protocol):
    """A body held as a stream that can give a part of itself (the disk tier's files)."""

    def part(self, first: int, last: int) -> AsyncIterator[bytes]: ...


def apply_range_stream(
    response: EdgeResponse, request_headers: Headers, *, method: str = "GET"
) -> EdgeResponse | None:
    """``apply_range`` for a 200 held as a stream of known length: one range is cut from
    the stream (a ``RangedStream`` seeks; another stream is read through and the bytes
    outside the range dropped, so an origin stream still reaches its end, and the disk tier
    that copies it); several ranges get the whole object."""
    size = decimal_value(header_value(response.headers, "content-length") or "", 2**63)
    if response.stream is None or size is None:
        return None
    ranges = _chosen(response.status, response.headers, size, request_headers, method)
    if ranges is None or len(ranges) > 1:
        return None
    if not ranges:
        return _unsatisfiable(response.headers, size)
    r = ranges[0]
    out = _part_headers(response.headers, r, size)
    part = getattr(response.stream, "part", None)
    sliced = part(r.first, r.last) if part is not None else _cut(response.stream, r)
    return EdgeResponse(206, out, reason="Partial Content", stream=sliced)


async def _cut(stream: AsyncIterator[bytes], r: ByteRange) -> AsyncIterator[bytes]:
    position = 0
    try:
        async for data in stream:
            start, end = max(r.first - position, 0), min(r.last + 1 - position, len(data))
            if start < end:
                yield data[start:end]
            position += len(data)
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def widened_range(request_headers: Headers) -> str | None:
    """The Range the edge sends the origin for a viewer's Range on a cacheable miss: the
    whole object (``WIDENED_RANGE``) when the viewer's is a valid ``bytes=`` range; None
    (no Range) otherwise, as the whole object is then served anyway."""
    value = header_value(request_headers, "range")
    if value is None or parse_range(value) is None:
        return None
    return WIDENED_RANGE


_WHOLE = re.compile(r"bytes 0-(\d{1,19})/(\d{1,19})")


def whole_from_partial(response: EdgeResponse) -> EdgeResponse | None:
    """The origin's 206 to ``WIDENED_RANGE`` made the 200 object it is when it covers the
    whole object (``Content-Range: bytes 0-(N-1)/N`` and N bytes); None for a real part."""
    if response.status != 206:
        return None
    match = _WHOLE.fullmatch((header_value(response.headers, "content-range") or "").strip())
    if match is None or int(match[1]) + 1 != int(match[2]):
        return None
    size = int(match[2])
    length = header_value(response.headers, "content-length")
    if response.stream is None and len(response.body) != size:
        return None
    if response.stream is not None and length != str(size):
        return None
    headers = [(k, v) for k, v in response.headers if k.lower() not in _BODY_HEADERS]
    content_type = header_value(response.headers, "content-type")
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    headers.append(("Content-Length", str(size)))
    return EdgeResponse(200, headers, response.body, "OK", stream=response.stream)


def _kept(headers: Headers) -> Headers:
    return [(k, v) for k, v in headers if k.lower() not in _BODY_HEADERS]


def _content_range(r: ByteRange, size: int) -> str:
    return f"bytes {r.first}-{r.last}/{size}"


def _part_headers(headers: Headers, r: ByteRange, size: int) -> Headers:
    out = _kept(headers)
    content_type = header_value(headers, "content-type")
    if content_type is not None:
        out.append(("Content-Type", content_type))
    out.append(("Content-Range", _content_range(r, size)))
    out.append(("Content-Length", str(r.length)))
    return out


def _single(headers: Headers, body: bytes, r: ByteRange) -> EdgeResponse:
    part = body[r.first : r.last + 1]
    return EdgeResponse(206, _part_headers(headers, r, len(body)), part, "Partial Content")


def _multipart(
    headers: Headers, body: bytes, ranges: list[ByteRange], boundary: str
) -> EdgeResponse:
    content_type = header_value(headers, "content-type")
    chunks: list[bytes] = []
    for r in ranges:
        head = f"\r\n--{boundary}\r\n"
        if content_type is not None:
            head += f"Content-Type: {content_type}\r\n"
        head += f"Content-Range: {_content_range(r, len(body))}\r\n\r\n"
        chunks.append(head.encode("latin-1"))
        chunks.append(body[r.first : r.last + 1])
    chunks.append(f"\r\n--{boundary}--\r\n".encode("latin-1"))
    payload = b"".join(chunks)
    out = _kept(headers)
    out.append(("Content-Type", f"multipart/byteranges; boundary={boundary}"))
    out.append(("Content-Length", str(len(payload))))
    return EdgeResponse(206, out, payload, "Partial Content")


def _unsatisfiable(headers: Headers, size: int) -> EdgeResponse:
    drop = _BODY_HEADERS | {"content-encoding"}
    out = [(k, v) for k, v in headers if k.lower() not in drop]
    out.append(("Content-Range", f"bytes */{size}"))
    out.append(("Content-Length", "0"))
    return EdgeResponse(416, out, b"", "Range Not Satisfiable")
