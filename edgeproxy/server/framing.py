"""How a viewer request's body is delimited, and the heads the edge refuses for it (RFC 9112).

llhttp parses the bytes; what it lets through that a careful proxy must not is refused here,
from the head's headers, before the request is handed over (nothing reaches the pipeline or
the origin). The rules, in the order they are checked (the first that applies answers):

    rule                                                      status   RFC 9112
    Transfer-Encoding on an HTTP/1.0 request                  400      6.1
    Transfer-Encoding together with Content-Length            400      6.3 (3)
    a Transfer-Encoding whose last coding is not "chunked"    400      6.3 (4)
    "chunked" more than once (on one line or several)         400      7.1
    an empty coding ("Transfer-Encoding: , chunked")          400      5.6.1
    any other coding before "chunked" (gzip, deflate, …)      501      6.1: the edge decodes
                                                                       only chunked, and a
                                                                       transfer coding is hop-
                                                                       by-hop: it cannot pass on
    an HTTP/1.1 request without Host                          400      3.2
    more than one Host header                                 400      3.2
    a Host with a path, query, fragment, userinfo or blank    400      3.2

Field lines with the same name count as one list (RFC 9110 5.3): two ``Transfer-Encoding``
lines ``gzip`` and ``chunked`` are ``gzip, chunked`` (501). Coding names are case-insensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from edgeproxy.errors import BadRequest, CodingNotImplemented, EdgeError
from edgeproxy.messages import Headers

# A Host names an authority alone: a path, query, fragment, userinfo or blank in it is refused
# (a bare IPv6 literal such as ``::1`` is let through, as browsers and curl send it so).
_NOT_IN_HOST = re.compile(r"[\s/?#@\\]")


@dataclass(frozen=True, slots=True)
class Head:
    """What the framing rules read from a request head."""

    version: str
    codings: tuple[str, ...]  # Transfer-Encoding, as one list, lower-case, stripped
    has_transfer_encoding: bool
    has_length: bool
    hosts: tuple[str, ...]

    @classmethod
    def of(cls, headers: Headers, version: str) -> Head:
        te: list[str] = []
        hosts: list[str] = []
        has_te = has_length = False
        for name, value in headers:
            lower = name.lower()
            if lower == "transfer-encoding":
                has_te = True
                te.extend(coding.strip().lower() for coding in value.split(","))
            elif lower == "content-length":
                has_length = True
            elif lower == "host":
                hosts.append(value.strip())
        return cls(version, tuple(te), has_te, has_length, tuple(hosts))


Rule = tuple[Callable[[Head], bool], Callable[[], EdgeError]]

FRAMING_RULES: tuple[Rule, ...] = (
    (
        lambda h: h.has_transfer_encoding and h.version == "1.0",
        lambda: BadRequest("Transfer-Encoding on an HTTP/1.0 request"),
    ),
    (
        lambda h: h.has_transfer_encoding and h.has_length,
        lambda: BadRequest("Transfer-Encoding with Content-Length"),
    ),
    (
        lambda h: h.has_transfer_encoding and h.codings[-1:] != ("chunked",),
        lambda: BadRequest("Transfer-Encoding whose last coding is not chunked"),
    ),
    (lambda h: h.codings.count("chunked") > 1, lambda: BadRequest("chunked more than once")),
    (lambda h: "" in h.codings, lambda: BadRequest("an empty transfer coding")),
    (
        lambda h: len(h.codings) > 1,
        lambda: CodingNotImplemented("a transfer coding other than chunked"),
    ),
    (lambda h: h.version == "1.1" and not h.hosts, lambda: BadRequest("HTTP/1.1 without Host")),
    (lambda h: len(h.hosts) > 1, lambda: BadRequest("more than one Host header")),
    (
        lambda h: any(_NOT_IN_HOST.search(host) for host in h.hosts),
        lambda: BadRequest("a Host header that is more than host[:port]"),
    ),
)


@dataclass(frozen=True, slots=True)
class Framing:
    """How the body after an accepted head is delimited."""

    chunked: bool
    length: int  # Content-Length; 0 without one (or when chunked)

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0


def request_framing(headers: Headers, version: str) -> Framing:
    """The framing of a request head llhttp accepted; raises the ``EdgeError`` to answer
    when a rule of the table refuses it."""
    head = Head.of(headers, version)
    for applies, error in FRAMING_RULES:
        if applies(head):
            raise error()
    if head.has_transfer_encoding:
        return Framing(chunked=True, length=0)
    return Framing(chunked=False, length=_content_length(headers))


def _content_length(headers: Headers) -> int:
    # llhttp already refused a repeated, listed, signed or non-numeric Content-Length.
    for name, value in headers:
        if name.lower() == "content-length":
            return int(value)
    return 0
