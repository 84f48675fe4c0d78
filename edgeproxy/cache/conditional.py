"""Conditional requests: a viewer's answered from the cache, and the edge's own revalidation
of a stale object (reference 7.8; RFC 9110 13, 15.4.5; RFC 9111 4.3).

Viewer side: ``answer_conditional(status, headers, method, request_headers)`` returns a 304
to send instead of the stored object, or None to send the object. Only GET and HEAD of a
stored 200 are answered (RFC 9110 13.1: a 304 answers a GET or HEAD). Precedence as RFC 9110
13.2.2: ``If-None-Match`` when present (weak comparison, ``*`` or a list), else
``If-Modified-Since`` (a valid HTTP-date; not modified when the stored Last-Modified, or
without one the stored Date, is not later). ``If-Match`` and ``If-Unmodified-Since`` are not
answered by the edge [choice]: the object is served as if they were absent. CloudFront's docs
do not describe viewer conditionals on hits (reference 7.8 [?]); this is RFC behaviour.

The 304 carries the stored fields RFC 9110 15.4.5 lists for it: Cache-Control,
Content-Location, Date, ETag, Expires, Vary, plus Last-Modified (useful to a cache, the RFC
allows it). The edge adds its own (Age, X-Cache, Via, ...) when it finalises.

Edge side: ``revalidation_headers(stored)`` are the conditional headers sent with the
origin request for a stale object (If-None-Match from its ETag, If-Modified-Since from its
Last-Modified); ``refresh(stored, response_304)`` / ``merge_304_headers`` are its stored
headers updated by the origin's 304 (RFC 9111 4.3.4 and 3.2): each field the 304 carries
replaces the stored one, except the fields that describe the stored body or the connection
(Content-Length, Content-Encoding, Content-Range, Transfer-Encoding, hop-by-hop), and except
a strong ETag that would undo the weak one the edge wrote when it compressed the body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from edgeproxy.cache.httpdate import parse_http_date
from edgeproxy.messages import EdgeResponse, Header, Headers, header_value

# RFC 9110 15.4.5: what a 304 repeats from the 200 it stands for (+ Last-Modified).
NOT_MODIFIED_FIELDS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary", "last-modified"}
)
# RFC 9111 3.2 / 3.1: fields a 304 does not update on the stored response.
NOT_UPDATED_BY_304 = frozenset(
    {
        "content-length",
        "content-encoding",
        "content-range",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
# An entity tag (quoted; may hold commas) or "*", in an If-None-Match list.
_ETAG = re.compile(r'\*|(?:W/)?"[^"]*"')


class Validators(Protocol):
    """What revalidation reads from a stored object (``cache.CachedObject`` is one)."""

    headers: Headers
    etag: str | None
    last_modified: str | None


def _opaque(tag: str) -> str:
    return tag.strip().removeprefix("W/")


def none_match(if_none_match: str, etag: str | None) -> bool:
    """True when the If-None-Match condition is false, i.e. the viewer's copy is current:
    ``*`` with any stored object, or a listed tag equal to ``etag`` by weak comparison."""
    tags = _ETAG.findall(if_none_match)
    if "*" in tags:
        return True
    if etag is None:
        return False
    mine = _opaque(etag)
    return any(_opaque(tag) == mine for tag in tags)


def _timestamp(value: str | None) -> float | None:
    # HTTP-dates only (RFC 9110 5.6.7), the edge's one date rule: email.utils would also read
    # "UTC", one-digit days or a missing weekday, which a recipient must treat as invalid.
    return None if value is None else parse_http_date(value)


def not_modified_since(if_modified_since: str, headers: Headers) -> bool:
    """True when the stored object has not changed since the viewer's date."""
    since = _timestamp(if_modified_since)
    if since is None:
        return False  # an invalid date: the condition is ignored (RFC 9110 13.1.3)
    modified = _timestamp(header_value(headers, "last-modified"))
    if modified is None:
        modified = _timestamp(header_value(headers, "date"))
    return modified is not None and modified <= since


def answer_conditional(
    status: int, headers: Headers, method: str, request_headers: Headers
) -> EdgeResponse | None:
    """A 304 for the viewer when its conditional says its copy is current, else None."""
    if status != 200 or method not in ("GET", "HEAD"):
        return None
    inm = ims = None
    for name, value in request_headers:
        lname = name.lower()
        if lname == "if-none-match":
            inm = value if inm is None else f"{inm}, {value}"
        elif lname == "if-modified-since" and ims is None:
            ims = value
    if inm is not None:
        current = none_match(inm, header_value(headers, "etag"))
    elif ims is not None:
        current = not_modified_since(ims, headers)
    else:
        return None
    return not_modified(headers) if current else None


def not_modified(headers: Headers) -> EdgeResponse:
    """The 304 standing for a stored 200 with ``headers``."""
    kept = [(k, v) for k, v in headers if k.lower() in NOT_MODIFIED_FIELDS]
    return EdgeResponse(304, kept, b"", "Not Modified")


# --- the edge revalidating a stale object --------------------------------------------------


def revalidation_headers(stored: Validators) -> Headers:
    """The conditional headers that ask the origin whether ``stored`` is still good."""
    headers: Headers = []
    if stored.etag:
        headers.append(("If-None-Match", stored.etag))  # weak tags too, as stored
    if stored.last_modified:
        headers.append(("If-Modified-Since", stored.last_modified))
    return headers


def merge_304_headers(stored: Headers, update: Iterable[Header]) -> Headers:
    """Stored headers with every field the 304 carries replaced by the 304's values."""
    stored_etag = header_value(stored, "etag")
    fresh = [
        (k, v)
        for k, v in update
        if k.lower() not in NOT_UPDATED_BY_304
        and not (k.lower() == "etag" and stored_etag == f"W/{v}")
    ]
    names = {k.lower() for k, _ in fresh}
    return [(k, v) for k, v in stored if k.lower() not in names] + fresh


def refresh(stored: Validators, response_304: EdgeResponse) -> Headers:
    """``stored``'s headers updated by the origin's 304 (see ``merge_304_headers``); the
    cache stores them with a new freshness (``CacheStore.refresh`` does both)."""
    return merge_304_headers(stored.headers, response_304.headers)
