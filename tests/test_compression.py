"""CloudFront's compression rules (reference 7.9): one test per row of the table, the
headers of a compressed response, and round trips through real gzip and Brotli."""

from __future__ import annotations

import gzip
from typing import Any

import brotli
import pytest
from config_builder import cache_behavior, forwarded_values

from edgeproxy.cache.compression import (
    OFF_LOOP_BYTES,
    CompressionPolicy,
    Compressor,
    compressed_headers,
    maybe_compress,
    why_not,
)
from edgeproxy.cache.key import KeyPolicy
from edgeproxy.cache.ttl import TtlPolicy
from edgeproxy.config.behaviors import CacheBehavior
from edgeproxy.config.policies import CACHE_POLICY_IDS
from edgeproxy.messages import EdgeRequest, Headers, header_value, header_values
from edgeproxy.viewer.request_checks import as_received

BODY = b"<html>" + b"hello compression " * 200 + b"</html>"  # 3,613 bytes


def behavior(compress: bool = True, **fields: Any) -> CacheBehavior:
    return cache_behavior(compress=compress, **fields)


def policy_of(**fields: Any) -> CompressionPolicy:
    b = behavior(**fields)
    return CompressionPolicy.of(b, KeyPolicy.from_behavior(b), TtlPolicy.from_behavior(b))


OPTIMIZED = policy_of(cache_policy_id=CACHE_POLICY_IDS["CachingOptimized"])
OFF = policy_of(compress=False, cache_policy_id=CACHE_POLICY_IDS["CachingOptimized"])
DISABLED = policy_of(cache_policy_id=CACHE_POLICY_IDS["CachingDisabled"])
UNCOMPRESSED = policy_of(cache_policy_id=CACHE_POLICY_IDS["CachingOptimizedForUncompressedObjects"])


def legacy(*headers: str) -> CompressionPolicy:
    return policy_of(forwarded_values=forwarded_values(headers=headers))


AE_IN_KEY = legacy("Accept-Encoding")
NEITHER = "viewer accepts neither"


def req(accept: str | None = "gzip, deflate, br", version: str = "1.1") -> EdgeRequest:
    headers = [] if accept is None else [("Accept-Encoding", accept)]
    return EdgeRequest("GET", "/a", "", headers, "192.0.2.1", http_version=version)


def origin_headers(body: bytes = BODY, **change: str | None) -> Headers:
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Length": str(len(body))}
    headers.update({k.replace("_", "-"): v for k, v in change.items() if v is not None})
    for key in [k for k, v in change.items() if v is None]:
        headers.pop(key.replace("_", "-"), None)
    return list(headers.items())


def test_brotli_preferred_and_round_trips() -> None:
    out = maybe_compress(OPTIMIZED, req(), 200, origin_headers(), BODY)
    assert out is not None
    assert out.encoding == "br"
    assert brotli.decompress(out.body) == BODY
    assert header_value(out.headers, "Content-Encoding") == "br"
    assert header_value(out.headers, "Content-Length") == str(len(out.body))
    assert header_value(out.headers, "Vary") == "Accept-Encoding"


def test_gzip_when_the_viewer_has_no_br() -> None:
    out = maybe_compress(OPTIMIZED, req("gzip"), 200, origin_headers(), BODY)
    assert out is not None and out.encoding == "gzip"
    assert gzip.decompress(out.body) == BODY


def test_q0_refuses_a_coding() -> None:
    out = maybe_compress(OPTIMIZED, req("br;q=0, gzip"), 200, origin_headers(), BODY)
    assert out is not None and out.encoding == "gzip"


@pytest.mark.parametrize(
    ("policy", "request_", "status", "headers", "body", "reason"),
    [
        (OFF, req(), 200, origin_headers(), BODY, "behavior"),
        (DISABLED, req(), 200, origin_headers(), BODY, "behavior"),
        (UNCOMPRESSED, req(), 200, origin_headers(), BODY, "behavior"),
        (AE_IN_KEY, req(), 200, origin_headers(), BODY, "behavior"),
        (OPTIMIZED, as_received(req(version="1.0")), 200, origin_headers(), BODY, NEITHER),
        (OPTIMIZED, req(None), 200, origin_headers(), BODY, NEITHER),
        (OPTIMIZED, req("deflate, identity"), 200, origin_headers(), BODY, NEITHER),
        (OPTIMIZED, req(), 500, origin_headers(), BODY, "status"),
        (OPTIMIZED, req(), 206, origin_headers(), BODY, "status"),
        (OPTIMIZED, req(), 200, origin_headers(Content_Encoding="gzip"), BODY, "Content-Encoding"),
        (OPTIMIZED, req(), 200, origin_headers(Content_Length=None), BODY, "Content-Length"),
        (OPTIMIZED, req(), 200, origin_headers(b"x" * 999), b"x" * 999, "size"),
        (OPTIMIZED, req(), 200, origin_headers(b""), b"", "size"),
        (OPTIMIZED, req(), 200, origin_headers(Content_Type="image/png"), BODY, "type"),
        (OPTIMIZED, req(), 200, origin_headers(Content_Type=None), BODY, "type"),
    ],
)  # fmt: skip
def test_each_rule_can_stop_compression(
    policy: CompressionPolicy,
    request_: EdgeRequest,
    status: int,
    headers: Headers,
    body: bytes,
    reason: str,
) -> None:
    assert maybe_compress(policy, request_, status, headers, body) is None
    found = why_not(policy, request_, status, headers, body)
    assert found is not None and reason in found


@pytest.mark.parametrize("status", [200, 403, 404])
def test_compressible_statuses(status: int) -> None:
    assert maybe_compress(OPTIMIZED, req(), status, origin_headers(), BODY) is not None
    assert why_not(OPTIMIZED, req(), status, origin_headers(), BODY) is None


def test_size_bounds_are_inclusive() -> None:
    for size in (1_000, 10_000_000):
        body = b"a" * size
        assert maybe_compress(OPTIMIZED, req(), 200, origin_headers(body), body) is not None
    big = b"a" * 10_000_001
    assert maybe_compress(OPTIMIZED, req(), 200, origin_headers(big), big) is None


def test_content_type_parameters_and_case_are_ignored() -> None:
    headers = origin_headers(Content_Type="Application/JSON; charset=UTF-8")
    assert maybe_compress(OPTIMIZED, req(), 200, headers, BODY) is not None


def test_policy_choices() -> None:
    assert OPTIMIZED.encodings == ("br", "gzip")
    media = policy_of(cache_policy_id=CACHE_POLICY_IDS["Elemental-MediaPackage"])
    assert media.encodings == ("gzip",)
    legacy = policy_of(forwarded_values=forwarded_values())
    assert legacy.encodings == ("gzip",)
    assert maybe_compress(media, req("br"), 200, origin_headers(), BODY) is None


def test_compressed_headers_weaken_etag_and_merge_vary() -> None:
    headers = [("ETag", '"abc"'), ("Vary", "Origin"), ("Content-Length", "3613")]
    out = compressed_headers(headers, "gzip", 100)
    assert header_value(out, "ETag") == 'W/"abc"'
    assert header_values(out, "Vary") == ["Origin, Accept-Encoding"]
    assert header_value(out, "Content-Length") == "100"
    assert header_value(out, "Content-Encoding") == "gzip"
    already = compressed_headers([("ETag", 'W/"x"'), ("Vary", "accept-encoding")], "br", 5)
    assert header_value(already, "ETag") == 'W/"x"'
    assert header_values(already, "Vary") == ["accept-encoding"]
    assert headers == [("ETag", '"abc"'), ("Vary", "Origin"), ("Content-Length", "3613")]


@pytest.mark.parametrize("size", [OFF_LOOP_BYTES, OFF_LOOP_BYTES + 1, 3 * OFF_LOOP_BYTES])
async def test_compressor_gives_what_maybe_compress_gives_inline_or_on_a_thread(
    size: int,
) -> None:
    body = (BODY * (size // len(BODY) + 1))[:size]
    compressor = Compressor(workers=1)
    try:
        for accept in ("br", "gzip", None):
            got = await compressor.compress(OPTIMIZED, req(accept), 200, origin_headers(body), body)
            assert got == maybe_compress(OPTIMIZED, req(accept), 200, origin_headers(body), body)
    finally:
        compressor.close()
