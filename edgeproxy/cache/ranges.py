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
and stores nothing. Ranges apply to the stored bytes, so a compressed variant is cut in its
encoded form, as any HTTP cache does. A multipart body carries each part's Content-Type and
Content-Range; its boundary is random unless the caller passes one.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from edgeproxy.messages import EdgeResponse, Headers, decimal_value, header_value

MAX_RANGES = 50
# A position past any object the edge can hold (30 GB, reference 5): larger numbers count
# as this one, so a range starting there is unsatisfiable and one ending there stops at the
# end, however many digits the viewer wrote.
BEYOND_ANY_OBJECT = 10**18
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
    ranges = resolve(specs, len(body))
    if not ranges:
        return _unsatisfiable(headers, len(body))
    if len(ranges) == 1:
        return _single(headers, body, ranges[0])
    if not _ascending(ranges):
        return None  # reference 7.10: the whole object, 200
    return _multipart(headers, body, ranges, boundary or secrets.token_hex(16))


def _kept(headers: Headers) -> Headers:
    return [(k, v) for k, v in headers if k.lower() not in _BODY_HEADERS]


def _content_range(r: ByteRange, size: int) -> str:
    return f"bytes {r.first}-{r.last}/{size}"


def _single(headers: Headers, body: bytes, r: ByteRange) -> EdgeResponse:
    part = body[r.first : r.last + 1]
    out = _kept(headers)
    content_type = header_value(headers, "content-type")
    if content_type is not None:
        out.append(("Content-Type", content_type))
    out.append(("Content-Range", _content_range(r, len(body))))
    out.append(("Content-Length", str(len(part))))
    return EdgeResponse(206, out, part, "Partial Content")


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
