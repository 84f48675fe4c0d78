"""HTTP/1.1 response heads as bytes, for the answers of ``server/answering.py``.

The pipeline hands over an ``EdgeResponse`` whose headers are final except for framing:
the body's length and how it is delimited are the connection's business, so any
Content-Length, Transfer-Encoding, Connection or Keep-Alive among them is replaced here
(a stream's Content-Length is kept as its declared length). An origin's
``Transfer-Encoding`` without a Content-Length says no length was known: such an answer
goes on chunked, held whole or not, as CloudFront returns a chunked origin answer chunked
on the miss and on later hits (DG RequestAndResponseBehaviorCustomOrigin, "Transfer
Encoding"); to HTTP/1.0, which has no chunked coding, with its length. ``Date`` and
``Server: CloudFront`` are added when missing (reference 6.3), and ``Connection:
keep-alive`` on every answer that keeps the connection open, HTTP/1.1 too, as CloudFront
writes it (a real 301 in maslick/redirector's README: ``Content-Length: 0``,
``Connection: keep-alive``, ``Server: CloudFront``). One pass over the headers,
one ``str.join``, one encode: this is on the path of every cache hit.

Every head is checked here, whatever produced it (an origin, a handler, the config, the
edge itself), because this is the one place all of them pass: a reason phrase or header
value holding CR, LF or NUL, a header name that is not an RFC 9110 token, a status that is
not three digits, or a character no byte stands for raises ``UnsafeHead`` and is never
written. Cheap, as it runs on every hit: a name is proved a token by the lookup the loop
makes anyway (``_KNOWN_NAMES``; a regex only for others), and CR, LF and NUL by three C
scans of the joined head (``_check``): each line built here ends in the one CR LF put
there, so any other CR or LF came from a field.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from email.utils import formatdate
from enum import Enum
from http import HTTPStatus

from edgeproxy.messages import HEADER_NAME, EdgeResponse

# Header names the head builder watches for, as bit flags.
_LENGTH = 1  # a stream's declared length; replaced by ours
_FRAMING = 2  # replaced by ours
_DATE = 4  # kept; ours added only when missing
_SERVER = 8  # likewise
_CHUNKED = 16  # the origin's Transfer-Encoding: replaced by ours, but read (no length known)
_WATCHED = {
    "content-length": _LENGTH,
    "transfer-encoding": _CHUNKED,
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

# Names in the case they usually come in, each with its watched flags: one lookup proves it
# a token and gives the flags, sparing the common name a regex and a lower().
_COMMON_NAMES = (
    "Accept-Ranges Access-Control-Allow-Credentials Access-Control-Allow-Origin "
    "Access-Control-Expose-Headers Age Cache-Control Connection Content-Disposition "
    "Content-Encoding Content-Language Content-Length Content-Range Content-Security-Policy "
    "Content-Type Date ETag Expires Keep-Alive Last-Modified Location Referrer-Policy Server "
    "Server-Timing Set-Cookie Strict-Transport-Security Transfer-Encoding Vary Via "
    "WWW-Authenticate X-Amz-Cf-Id X-Amz-Cf-Pop X-Cache X-Content-Type-Options "
    "X-Frame-Options X-XSS-Protection"
).split()
_KNOWN_NAMES = {
    name: _WATCHED.get(name.lower(), 0) for name in _COMMON_NAMES if HEADER_NAME.fullmatch(name)
}
_SPLITTING = re.compile(r"[\r\n\x00]")

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"


class UnsafeHead(ValueError):
    """A head that must never be written (CR, LF or NUL in a field, a name that is not a
    token, ...): a defect upstream of the writer, whose message says which field."""


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
        watched = _KNOWN_NAMES.get(name)
        if watched is None:
            watched = _name_flags(name)
        if watched:
            seen |= watched
            if watched & (_LENGTH | _FRAMING | _CHUNKED):
                if watched == _LENGTH:
                    declared = value
                continue
        lines.append(f"{name}: {value}\r\n")
    if not seen & _DATE:
        lines.append(date.line())
    if not seen & _SERVER:
        lines.append("Server: CloudFront\r\n")
    if response.stream is None and not head_only and 200 <= status and status not in _BODYLESS:
        framing, length = Framing.LENGTH, len(response.body)  # the usual case, decided at once
        if seen & _CHUNKED and declared is None and not http10:
            framing, length = Framing.CHUNKED, -1  # the origin knew no length (see above)
    else:
        framing, length = _framing(response, declared, head_only=head_only, http10=http10)
    if framing is Framing.CLOSE:
        keep_alive = False
    if framing is Framing.CHUNKED:
        lines.append("Transfer-Encoding: chunked\r\n")
    elif length >= 0:
        lines.append(f"Content-Length: {length}\r\n")
    lines.append("Connection: keep-alive\r\n" if keep_alive else "Connection: close\r\n")
    lines.append("\r\n")
    if head_only:
        framing = Framing.NONE
    text = "".join(lines)
    _check(text, len(lines), response)
    return Head(_encode(text), framing, length, keep_alive)


def _name_flags(name: str) -> int:
    """The watched flags of a name not in ``_KNOWN_NAMES``, once it is known to be a token."""
    if not HEADER_NAME.fullmatch(name):
        raise UnsafeHead(f"the header name {name[:200]!r} is not a token")
    # The length test spares most names a lower().
    return _WATCHED.get(name.lower(), 0) if len(name) in _WATCHED_LENGTHS else 0


def _check(text: str, lines: int, response: EdgeResponse) -> None:
    """Raise ``UnsafeHead`` unless ``text``, built of ``lines`` lines each ending in the
    CR LF put there, holds no other CR or LF and no NUL. ``str.count`` of one character is
    the cheapest scan there is (``in`` is cheaper still: NUL)."""
    if text.count("\n") != lines or text.count("\r") != lines or "\x00" in text:
        raise UnsafeHead(_culprit(response))


def _culprit(response: EdgeResponse) -> str:
    """Which field ``_check`` refused (the slow path: defects only)."""
    bad = _SPLITTING.search(response.reason)
    if bad:
        return f"the reason {response.reason[:200]!r} holds {bad.group()!r}"
    for name, value in response.headers:
        bad = _SPLITTING.search(value)
        if bad:
            return f"the value of {name} {value[:200]!r} holds {bad.group()!r}"
    return "a line break or NUL the edge added itself"


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
    if not 100 <= status <= 999:
        raise UnsafeHead(f"the status {status} is not three digits")
    return f"HTTP/1.1 {status} {reason or 'Unknown'}\r\n"


def _encode(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        pass
    try:
        # A handler's non-Latin-1 value goes as UTF-8; bytes an origin sent that were not
        # UTF-8 (aiohttp's surrogate escapes, e.g. a Latin-1 reason) go back as they came.
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError as exc:  # a lone surrogate: no byte stands for it
        char = exc.object[exc.start : exc.end]
        raise UnsafeHead(f"{char!r} cannot be encoded") from exc


def chunk(data: bytes) -> bytes:
    """One chunk of the chunked transfer coding."""
    return b"%x\r\n%b\r\n" % (len(data), data)
