"""The edge's own request and response values, free of any HTTP library's types.

Headers are an ordered list of ``(name, value)`` pairs: the name keeps the case it had on
the wire, repeated names stay repeated, in order, which is what Lambda@Edge events show.
What a header name and value may hold (RFC 9110) is defined here once, for every place that
judges one: the handler rules, the config and the writer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from edgeproxy.errors import EdgeError

Header = tuple[str, str]
Headers = list[Header]

# RFC 9110 token: a header name.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# What a header value or a reason phrase (both *(HTAB / SP / VCHAR / obs-text)) may not
# hold: controls but HTAB, among them CR, LF and NUL, which would split the message; and
# lone surrogates (from a JSON "\\ud800" escape), which cannot be sent as UTF-8.
BAD_VALUE_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def header_value(headers: Iterable[Header], name: str) -> str | None:
    """The first value of ``name`` (case-insensitive), or None."""
    lname = name.lower()
    for key, value in headers:
        if key.lower() == lname:
            return value
    return None


def header_values(headers: Iterable[Header], name: str) -> list[str]:
    """Every value of ``name`` (case-insensitive), in order."""
    lname = name.lower()
    return [value for key, value in headers if key.lower() == lname]


def title_case(name: str, words: Mapping[str, str] | None = None) -> str:
    """``user-agent`` → ``User-Agent``: how CloudFront writes a header name it makes, and how
    Lambda@Edge fills a missing ``key``. ``words`` spells particular words (lower-case) its
    own way, e.g. ``{"cloudfront": "CloudFront", "tls": "TLS"}`` for CloudFront-* headers."""
    spelled = words or {}
    return "-".join(
        spelled.get(part) or part[:1].upper() + part[1:] for part in name.lower().split("-")
    )


def without_headers(headers: Iterable[Header], names: frozenset[str]) -> Headers:
    """``headers`` minus every name in ``names`` (lower-case names)."""
    return [(k, v) for k, v in headers if k.lower() not in names]


def decimal_value(text: str, cap: int) -> int | None:
    """A field value's number as HTTP writes it (``1*DIGIT``: ASCII digits only, no sign,
    no space, no ``_``), at most ``cap``; None when ``text`` is not one. A number with more
    digits than ``cap`` is ``cap`` without being converted (``int()`` refuses over 4,300
    digits, and Python counts ``²`` or ``١`` as digits)."""
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0")
    if len(digits) > len(str(cap)):
        return cap
    return min(int(digits or "0"), cap)


class BodyStream(Protocol):
    """A request body still arriving from the viewer, read once (``http1_body.ViewerBody``):
    ``peek`` for a handler's copy, then its chunks for the origin."""

    length: int | None  # its Content-Length; None when chunked
    received: int  # bytes arrived so far

    @property
    def ended(self) -> bool: ...

    @property
    def started(self) -> bool: ...

    @property
    def error(self) -> EdgeError | None: ...

    async def peek(self, size: int) -> bytes: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def discard(self) -> None: ...


@dataclass(slots=True)
class OriginTarget:
    """Where an origin fetch goes: the ``origin.custom`` (or ``origin.s3``) object of a
    Lambda@Edge event. An S3-style origin is fetched over HTTPS on 443 from its domain."""

    domain_name: str
    port: int
    protocol: str  # "http" | "https"
    path: str = ""
    custom_headers: Headers = field(default_factory=list)
    read_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    ssl_protocols: tuple[str, ...] = ("TLSv1.2",)
    connection_timeout: float = 10.0
    connection_attempts: int = 3
    kind: str = "custom"  # "custom" | "s3": which object events show
    # HTTPS trust (edge.origins.<origin_id>): a PEM bundle's path, or no check at all.
    ca_file: str = ""
    verify: bool = True
    s3_auth_method: str = "none"  # s3: "origin-access-identity" | "none"
    s3_region: str = ""  # s3: the bucket's region


@dataclass(frozen=True, slots=True)
class OriginChain:
    """The origins a miss tries in order: one origin, or an origin group's primary then its
    secondary, with the origin statuses that send the request on to the secondary."""

    targets: tuple[OriginTarget, ...]
    failover_codes: frozenset[int] = frozenset()

    def tried(self, may_fail_over: bool) -> tuple[OriginTarget, ...]:
        """The secondary only for the requests that fail over (reference 7.12)."""
        return self.targets if may_fail_over else self.targets[:1]


@dataclass(slots=True)
class EdgeRequest:
    """A request as the edge holds it: from the viewer, then on its way to the origin.

    A viewer's body comes as ``body_stream`` (streamed, never held whole); ``body`` holds a
    body the edge has whole: one a handler replaced, or one built in tests and tools."""

    method: str
    uri: str  # path only, starts with "/"
    querystring: str  # raw, without "?", "" when absent
    headers: Headers
    client_ip: str
    client_port: int = 0
    body: bytes = b""
    scheme: str = "http"  # the listener the viewer used
    http_version: str = "1.1"
    origin: OriginTarget | None = None  # set once a behavior picked an origin
    tls: str = ""  # HTTPS viewers: "TLSv1.3:TLS_AES_128_GCM_SHA256:fullHandshake"
    # A WebSocket handshake (server/websocket.py): set by the viewer protocol from Upgrade, a header
    # functions never see, so no handler can turn a request into a tunnel or back.
    websocket: bool = False
    body_stream: BodyStream | None = None

    @property
    def has_body(self) -> bool:
        return bool(self.body) or self.body_stream is not None

    @property
    def body_size(self) -> int:
        """Bytes of the body: those held, or those of the stream that arrived so far."""
        return len(self.body) if self.body_stream is None else self.body_stream.received

    @property
    def target(self) -> str:
        """The request target as sent on a request line."""
        return f"{self.uri}?{self.querystring}" if self.querystring else self.uri

    def copy(self) -> EdgeRequest:
        """A shallow copy, whose fields the caller then sets: on the miss path in place of
        ``dataclasses.replace``, which costs 7 × as much (tests/test_messages.py checks that
        every field is copied)."""
        return EdgeRequest(
            self.method,
            self.uri,
            self.querystring,
            self.headers,
            self.client_ip,
            self.client_port,
            self.body,
            self.scheme,
            self.http_version,
            self.origin,
            self.tls,
            self.websocket,
            self.body_stream,
        )


class SwitchedConnection(Protocol):
    """An origin connection switched by its 101 to a WebSocket handshake (the viewer
    protocol's tunnel): the bytes carried each way, and what runs once it closes."""

    sent: int
    received: int
    on_close: list[Callable[[], None]]


@dataclass(slots=True)
class EdgeResponse:
    """A response on its way to the viewer: from the origin, the cache, a handler or the edge.

    ``stream`` is set instead of ``body`` for an origin answer too large to hold (over the
    cache's object size): its chunks pass to the viewer as they arrive and it is never
    cached. Whoever sends it must exhaust or ``aclose()`` it, which releases the origin
    connection; a stream that ends early raises ``OriginResponseError``.

    ``tunnel`` is set on the origin's 101 to a WebSocket handshake: after this head, the
    viewer's connection carries the origin's bytes (``websocket.Tunnel``).
    """

    status: int
    headers: Headers
    body: bytes = b""
    reason: str = ""
    stream: AsyncIterator[bytes] | None = None
    tunnel: SwitchedConnection | None = None

    def copy(self) -> EdgeResponse:
        """A shallow copy (as ``EdgeRequest.copy``)."""
        return EdgeResponse(
            self.status, self.headers, self.body, self.reason, self.stream, self.tunnel
        )
