"""CloudFront's own compression of origin responses (reference 7.9, DG ServingCompressedFiles).

Theory of operation
-------------------
``CompressionPolicy.of(behavior, key_policy, ttl_policy)`` is built once per cache behavior.
``Compressor.compress`` (the miss path's) or ``maybe_compress`` is called on an origin answer
before it is stored; it returns None (the common, cheap answer) or a ``Compressed`` body
with its new headers. Every condition is a row of ``_RULES``; the first that fails says why
not (``why_not`` gives it, for logs/tests):

=====================  ==============================================================
behavior               ``compress: true``; a cache policy with gzip and/or Brotli
                       enabled (legacy ``forwarded_values``: gzip only [inf, DG: Brotli
                       needs a cache policy]); caching not disabled (TTLs > 0); Accept-
                       Encoding not named in the key or legacy forwarded headers
viewer                 accepts br or gzip (q=0 refuses), br preferred; an HTTP/1.0
                       viewer's Accept-Encoding is removed as the request arrives
                       (``request_checks.as_received``), so it accepts neither
origin response        status 200, 403 or 404; no Content-Encoding; a Content-Length
                       header; body 1,000-10,000,000 bytes; Content-Type on the list
=====================  ==============================================================

The normalised Accept-Encoding is ``accepted_encodings`` (``cache/encodings.py``: one
implementation for the key, the origin request and this). A compressed response gets
``Content-Encoding``, ``Vary: Accept-Encoding`` (merged into an existing Vary), a new
``Content-Length``, and its strong ETag made weak (``W/"…"``, reference 6.3).

Levels: gzip 6 (zlib's default), Brotli quality 5: CloudFront does not say which it uses
[?]. Measured on 100 KB of Python source: Brotli q5 1.2 ms (11 KB), q11 78 ms (9.9 KB), gzip
6 2.8 ms (23 KB). The ``brotli`` binding was chosen over ``brotlicffi`` (same C library):
equal at 100 KB, 1.6x faster for small bodies (60 KB JSON: 0.15 vs 0.23 ms at q4) and 2x
faster to decompress. The cost depends on the text: 2 MB of random words take about a
second at q5 on the 2-core CI machine (tests/test_policy_flow.py), so a body over
``OFF_LOOP_BYTES`` is compressed on a worker thread (both coders release the GIL) while the
event loop goes on answering other viewers.
"""

from __future__ import annotations

import asyncio
import gzip
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import brotli

from edgeproxy.cache.encodings import accepted_encodings
from edgeproxy.cache.key import KeyPolicy
from edgeproxy.cache.ttl import TtlPolicy
from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.messages import EdgeRequest, Headers, header_value

MIN_BYTES = 1_000
MAX_BYTES = 10_000_000
STATUSES = frozenset({200, 403, 404})
GZIP_LEVEL = 6
BROTLI_QUALITY = 5
OFF_LOOP_BYTES = 64 * 1024  # larger bodies are compressed on a worker thread

# DG ServingCompressedFiles, reference 7.9 (media types, compared without parameters).
COMPRESSIBLE_TYPES = frozenset(
    """
    application/dash+xml application/eot application/font application/font-sfnt
    application/javascript application/json application/opentype application/otf
    application/pkcs7-mime application/protobuf application/rss+xml application/truetype
    application/ttf application/vnd.apple.mpegurl application/vnd.mapbox-vector-tile
    application/vnd.ms-fontobject application/xhtml+xml application/xml
    application/x-font-opentype application/x-font-truetype application/x-font-ttf
    application/x-httpd-cgi application/x-javascript application/x-mpegurl
    application/x-opentype application/x-otf application/x-perl application/x-ttf font/eot
    font/opentype font/otf font/ttf image/svg+xml text/css text/csv text/html text/javascript
    text/js text/plain text/richtext text/tab-separated-values text/xml text/x-component
    text/x-java-source text/x-script vnd.apple.mpegurl
    """.split()
)

_brotli: Callable[..., Any] = brotli.compress


def _br(body: bytes) -> bytes:
    return cast(bytes, _brotli(body, quality=BROTLI_QUALITY))


def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


CODERS: dict[str, Callable[[bytes], bytes]] = {"br": _br, "gzip": _gzip}


@dataclass(frozen=True, slots=True)
class CompressionPolicy:
    """What one behavior lets the edge compress with: ``encodings`` in preference order;
    empty when it never compresses."""

    encodings: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, behavior: CacheBehavior, key_policy: KeyPolicy, ttl_policy: TtlPolicy
    ) -> CompressionPolicy:
        """A behavior's ``compress`` plus its resolved key and TTL policies."""
        if not behavior.compress or ttl_policy.caching_disabled:
            return cls()
        if "accept-encoding" in key_policy.headers.names:
            return cls()  # Accept-Encoding named in the key: CloudFront leaves it alone
        if key_policy.legacy:
            return cls(("gzip",))
        return cls(tuple(e for e in ("br", "gzip") if e in key_policy.encodings))


@dataclass(frozen=True, slots=True)
class Compressed:
    encoding: str  # "br" or "gzip"
    headers: Headers
    body: bytes


def _viewer_encoding(policy: CompressionPolicy, request: EdgeRequest) -> str | None:
    # An HTTP/1.0 viewer's Accept-Encoding is gone already (request_checks.as_received).
    accepted = accepted_encodings(header_value(request.headers, "accept-encoding"))
    return next((e for e in policy.encodings if e in accepted.split(",")), None)


def _media_type(headers: Headers) -> str:
    content_type = header_value(headers, "content-type") or ""
    return content_type.partition(";")[0].strip().lower()


# (reason, test): a response is compressed only when every test passes.
_RULES: tuple[tuple[str, Callable[[int, Headers, bytes], bool]], ...] = (
    ("status is not 200, 403 or 404", lambda status, _h, _b: status in STATUSES),
    ("origin set Content-Encoding", lambda _s, h, _b: header_value(h, "content-encoding") is None),
    ("no Content-Length", lambda _s, h, _b: header_value(h, "content-length") is not None),
    ("size outside 1,000-10,000,000", lambda _s, _h, b: MIN_BYTES <= len(b) <= MAX_BYTES),
    ("type not compressible", lambda _s, h, _b: _media_type(h) in COMPRESSIBLE_TYPES),
)


def why_not(
    policy: CompressionPolicy, request: EdgeRequest, status: int, headers: Headers, body: bytes
) -> str | None:
    """Why this response is not compressed, or None when it is."""
    if not policy.encodings:
        return "behavior does not compress"
    if _viewer_encoding(policy, request) is None:
        return "viewer accepts neither br nor gzip"
    return next((reason for reason, test in _RULES if not test(status, headers, body)), None)


def maybe_compress(
    policy: CompressionPolicy, request: EdgeRequest, status: int, headers: Headers, body: bytes
) -> Compressed | None:
    """The compressed body and headers for the viewer ``request`` (its Accept-Encoding), or
    None when CloudFront would send ``body`` as it is. ``headers`` is not changed."""
    encoding = _chosen(policy, request, status, headers, body)
    return None if encoding is None else _packed(encoding, headers, body)


class Compressor:
    """``maybe_compress`` for the miss path: bodies up to ``OFF_LOOP_BYTES`` inline (quicker
    than a thread hop), larger ones on its own worker threads, as many as there are cores
    (compression is CPU work), apart from the loop's default executor (which resolves the
    origins' names: a name lookup never waits behind seconds of Brotli)."""

    def __init__(self, workers: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=workers or os.cpu_count() or 1, thread_name_prefix="edgeproxy-compress"
        )

    async def compress(
        self,
        policy: CompressionPolicy,
        request: EdgeRequest,
        status: int,
        headers: Headers,
        body: bytes,
    ) -> Compressed | None:
        encoding = _chosen(policy, request, status, headers, body)
        if encoding is None:
            return None
        if len(body) <= OFF_LOOP_BYTES:
            return _packed(encoding, headers, body)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _packed, encoding, headers, body)

    def close(self) -> None:
        """Stop the worker threads (a compression under way finishes, unused)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _chosen(
    policy: CompressionPolicy, request: EdgeRequest, status: int, headers: Headers, body: bytes
) -> str | None:
    """The encoding to compress with, or None when a rule says no."""
    if not policy.encodings:
        return None
    encoding = _viewer_encoding(policy, request)
    if encoding is None or any(not test(status, headers, body) for _, test in _RULES):
        return None
    return encoding


def _packed(encoding: str, headers: Headers, body: bytes) -> Compressed:
    packed = CODERS[encoding](body)
    return Compressed(encoding, compressed_headers(headers, encoding, len(packed)), packed)


def compressed_headers(headers: Headers, encoding: str, length: int) -> Headers:
    """``headers`` of a body now encoded with ``encoding`` and ``length`` bytes long."""
    out: Headers = []
    vary_done = False
    for name, value in headers:
        lname = name.lower()
        if lname == "content-length":
            value = str(length)
        elif lname == "etag" and not value.startswith("W/"):
            value = f"W/{value}"
        elif lname == "vary" and not vary_done:
            vary_done = True
            fields = {v.strip().lower() for v in value.split(",")}
            if "accept-encoding" not in fields and "*" not in fields:
                value = f"{value}, Accept-Encoding"
        out.append((name, value))
    if not vary_done:
        out.append(("Vary", "Accept-Encoding"))
    out.append(("Content-Encoding", encoding))
    return out
