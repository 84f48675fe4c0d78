"""HTTP/1.1 response heads as bytes, for the viewer protocol in ``http1.py``.

The pipeline hands over an ``EdgeResponse`` whose headers are final except for framing:
the body's length and how it is delimited are the connection's business, so any
Content-Length, Transfer-Encoding, Connection or Keep-Alive among them is replaced here
(a stream's Content-Length is kept as its declared length). ``Date`` and
``Server: CloudFront`` are added when missing (reference 6.3). One pass over the headers,
one ``str.join``, one encode: this is on the path of every cache hit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import formatdate
from enum import Enum
from http import HTTPStatus

from .messages import EdgeResponse

# Header names the head builder watches for, as bit flags.
_LENGTH = 1  # a stream's declared length; replaced by ours
_FRAMING = 2  # replaced by ours
_DATE = 4  # kept; ours added only when missing
_SERVER = 8  # likewise
_WATCHED = {
    "content-length": _LENGTH,
    "transfer-encoding": _FRAMING,
    "connection": _FRAMING,
    "keep-alive": _FRAMING,
    "date": _DATE,
    "server": _SERVER,
}
_WATCHED_LENGTHS = frozenset(len(name) for name in _WATCHED)

# Status lines for every status Python knows, with its standard reason or none, built once;
# others are made when met.
_STATUS_LINES = {
    (s.value, reason): f"HTTP/1.1 {s.value} {s.phrase}\r\n"
    for s in HTTPStatus
    for reason in ("", s.phrase)
}

_BODYLESS = frozenset({204, 304})  # and every 1xx

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


class Framing(Enum):
    """How the body after a head is delimited."""

    NONE = "none"  # no body may follow (HEAD, 1xx, 204, 304)
    LENGTH = "length"  # exactly Content-Length bytes
    CHUNKED = "chunked"  # chunked transfer coding (a stream without a length, HTTP/1.1)
    CLOSE = "close"  # until the connection closes (a stream without a length, HTTP/1.0)


@dataclass(slots=True)
class Head:
    """A serialized head, how its body is framed, and whether the connection stays open."""

    data: bytes
    framing: Framing
    length: int
    keep_alive: bool


class DateHeader:
    """``Date: <IMF-fixdate>`` formatted once per second, not once per response."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = ""

    def line(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._line = f"Date: {formatdate(second, usegmt=True)}\r\n"
        return self._line


def encode_head(
    response: EdgeResponse,
    date: DateHeader,
    *,
    head_only: bool,
    keep_alive: bool,
    http10: bool,
) -> Head:
    """The status line and headers of ``response`` with its framing decided.

    ``head_only`` is a HEAD request: the headers a GET would get, no body. ``keep_alive``
    is what the request asked for; the answer may still close (a stream without a length
    to an HTTP/1.0 viewer).
    """
    status = response.status
    lines = [_status_line(status, response.reason)]
    declared: str | None = None
    seen = 0
    for name, value in response.headers:
        # The length test spares most names a lower().
        if len(name) in _WATCHED_LENGTHS and (watched := _WATCHED.get(name.lower(), 0)):
            if watched & (_LENGTH | _FRAMING):
                if watched == _LENGTH:
                    declared = value
                continue
            seen |= watched
        lines.append(f"{name}: {value}\r\n")
    if not seen & _DATE:
        lines.append(date.line())
    if not seen & _SERVER:
        lines.append("Server: CloudFront\r\n")
    if response.stream is None and not head_only and 200 <= status and status not in _BODYLESS:
        framing, length = Framing.LENGTH, len(response.body)  # the usual case, decided at once
    else:
        framing, length = _framing(response, declared, head_only=head_only, http10=http10)
    if framing is Framing.CLOSE:
        keep_alive = False
    if framing is Framing.CHUNKED:
        lines.append("Transfer-Encoding: chunked\r\n")
    elif length >= 0:
        lines.append(f"Content-Length: {length}\r\n")
    if not keep_alive:
        lines.append("Connection: close\r\n")
    elif http10:
        lines.append("Connection: keep-alive\r\n")
    lines.append("\r\n")
    if head_only:
        framing = Framing.NONE
    return Head(_encode("".join(lines)), framing, length, keep_alive)


def _framing(
    response: EdgeResponse, declared: str | None, *, head_only: bool, http10: bool
) -> tuple[Framing, int]:
    """The body's framing and the Content-Length to announce (-1: none)."""
    if response.status < 200 or response.status in _BODYLESS:
        return Framing.NONE, -1
    declared_length = _length(declared)
    if response.stream is None:
        size = len(response.body)
        if head_only and size == 0:
            # A HEAD answered by the origin: its own length is the GET body's, if it said.
            return Framing.NONE, declared_length
        return Framing.LENGTH, size
    if declared_length >= 0:
        return Framing.LENGTH, declared_length
    return (Framing.CLOSE if http10 else Framing.CHUNKED), -1


def _length(value: str | None) -> int:
    if value is None or not value.isdigit() or not value.isascii():
        return -1
    return int(value)


def _status_line(status: int, reason: str) -> str:
    line = _STATUS_LINES.get((status, reason))
    if line is not None:
        return line
    return f"HTTP/1.1 {status} {reason or 'Unknown'}\r\n"


def _encode(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:  # a handler's non-Latin-1 header value: sent as UTF-8
        return text.encode("utf-8")


def chunk(data: bytes) -> bytes:
    """One chunk of the chunked transfer coding."""
    return b"%x\r\n%b\r\n" % (len(data), data)
