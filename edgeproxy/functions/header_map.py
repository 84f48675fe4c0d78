"""CloudFront's header map ⇄ the edge's header list (reference sections 2 and 4.1).

In an event, headers are a map: lower-case name → list of ``{key, value}``, one entry per
occurrence, in order. Disallowed headers (reference 4.1) are left out, as CloudFront never
shows them. Back from a handler, an entry without ``key`` gets the map key title-cased; an
entry whose ``key`` names another header than its map key is sent under the map key
title-cased (reference section 10 #10). Headers the handler never saw are kept as they were;
when the handler left the visible ones as they were, the original list is copied as is, so a
round trip keeps order, case and repeats exactly.
"""

from __future__ import annotations

from typing import Any

from edgeproxy.messages import Headers, title_case

HeaderMap = dict[str, list[dict[str, str]]]

# Reference 4.1, lower-case. Never shown to a handler, never accepted from one.
DISALLOWED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
DISALLOWED_PREFIXES = ("x-amz-cf-", "x-edge-")


def is_disallowed_header(lname: str) -> bool:
    """Whether a lower-case header name is on CloudFront's disallowed list."""
    return lname in DISALLOWED_HEADERS or lname.startswith(DISALLOWED_PREFIXES)


def headers_map(headers: Headers) -> HeaderMap:
    """Our header list as CloudFront's map, disallowed names left out."""
    out: HeaderMap = {}
    for name, value in headers:
        lname = name.lower()
        if is_disallowed_header(lname):
            continue
        entries = out.get(lname)
        if entries is None:
            out[lname] = [{"key": name, "value": value}]
        else:
            entries.append({"key": name, "value": value})
    return out


def headers_from_map(header_map: Any) -> Headers:
    """CloudFront's header map (already validated) as our header list."""
    out: Headers = []
    for name, entries in header_map.items():
        lname = name.lower()
        for entry in entries:
            key = entry.get("key")
            if not isinstance(key, str) or key.lower() != lname:
                key = title_case(lname)
            out.append((key, entry["value"]))
    return out


def _grouped(headers: Headers) -> Headers:
    """``headers`` in event order: repeats moved up to their name's first occurrence."""
    groups: dict[str, Headers] = {}
    for header in headers:
        groups.setdefault(header[0].lower(), []).append(header)
    return [header for group in groups.values() for header in group]


def merge_headers(original: Headers, returned: Headers) -> Headers:
    """What to send after a handler returned ``returned`` for the visible part of ``original``.

    Unchanged → a copy of ``original`` (keeps interleaved repeats and hidden headers in place;
    a copy, so a later change to the result never reaches the input); changed → ``returned``
    plus the headers the handler never saw.
    """
    hidden: Headers = []
    visible: Headers = []
    for header in original:
        (hidden if is_disallowed_header(header[0].lower()) else visible).append(header)
    if returned == visible or returned == _grouped(visible):
        return original.copy()
    return returned + hidden
