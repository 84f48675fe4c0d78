"""What a viewer connection's bytes say beyond the parser's callbacks: the path and query of
a request target, and the TLS facts of a connection (``EdgeRequest.tls``)."""

from __future__ import annotations

import asyncio

import httptools


def origin_form(url: bytes) -> bytes | None:
    """The path and query of a request target. An absolute-form target gives only its path
    and query: the host it names never selects an origin (the config does; no open proxy)."""
    if not url.startswith(b"/"):
        if url[:7].lower() != b"http://" and url[:8].lower() != b"https://":
            return None  # "*", authority-form, anything else
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError:
            return None
        path = parsed.path or b"/"
        url = path + b"?" + parsed.query if parsed.query else path
    if b"#" in url:
        url = url.partition(b"#")[0]
    return url


def tls_facts(transport: asyncio.BaseTransport) -> tuple[str, str]:
    """``EdgeRequest.tls`` for the first request and for later ones on this connection."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return "", ""
    cipher = ssl_object.cipher()
    prefix = f"{ssl_object.version()}:{cipher[0] if cipher else ''}"
    first = "sessionResumed" if ssl_object.session_reused else "fullHandshake"
    return f"{prefix}:{first}", f"{prefix}:connectionReused"
