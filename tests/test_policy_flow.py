"""Compression, ranges, viewer conditionals and response headers policies through a real
edge: response, X-Cache and the origin's request count."""

from __future__ import annotations

import asyncio
import gzip
import random
import string
import time

import brotli
from conftest import OriginResponse, RecordingOrigin, StartEdge, distribution
from viewer_wire import RawViewer

from edgeproxy.cache.compression import CODERS, MAX_BYTES

PAGE = "<html>" + "edgeproxy compresses this page. " * 80 + "</html>"


async def test_compressed_for_gzip_viewers_and_cached_per_encoding(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/page.html"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Content-Type": "text/html"}, body=PAGE
    )
    viewer = await start_edge(distribution(origin.port, compress=True))
    raw = await viewer.client.send(
        viewer.client.build_request(
            "GET", viewer.running.url("/page.html"), headers={"Accept-Encoding": "gzip"}
        ),
        stream=True,
    )
    body = b"".join([chunk async for chunk in raw.aiter_raw()])  # as sent, not decoded
    await raw.aclose()
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.headers["content-length"] == str(len(body))
    assert gzip.decompress(body) == PAGE.encode()

    plain = await viewer.get("/page.html", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.text == PAGE
    assert plain.headers["x-cache"] == "Miss from cloudfront"  # another key: no encoding

    again = await viewer.get("/page.html", headers={"Accept-Encoding": "gzip, br"})
    assert again.headers["x-cache"] == "Hit from cloudfront"
    assert again.headers["content-encoding"] == "gzip"  # legacy settings: gzip only
    assert again.text == PAGE
    assert len(origin.requests_for("/page.html")) == 2


async def test_range_request_cut_from_the_cached_object(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/data.txt"] = OriginResponse(body="0123456789abcdef")
    viewer = await start_edge(distribution(origin.port))
    # This origin ignores ranges: the first viewer gets the whole object, which is cached and
    # cut for the next ones (DG RangeGETs; tests/test_range_misses.py for origins that do not).
    first = await viewer.get("/data.txt", headers={"Range": "bytes=2-5"})
    assert first.status_code == 200
    assert first.headers["x-cache"] == "Miss from cloudfront"
    cut = await viewer.get("/data.txt", headers={"Range": "bytes=2-5"})
    assert cut.status_code == 206
    assert cut.text == "2345"
    assert cut.headers["content-range"] == "bytes 2-5/16"
    assert cut.headers["x-cache"] == "Hit from cloudfront"

    second = await viewer.get("/data.txt", headers={"Range": "bytes=-3"})
    assert second.status_code == 206
    assert second.text == "def"
    assert second.headers["x-cache"] == "Hit from cloudfront"

    beyond = await viewer.get("/data.txt", headers={"Range": "bytes=100-200"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == "bytes */16"
    assert len(origin.requests_for("/data.txt")) == 1
    whole = await viewer.get("/data.txt")
    assert whole.status_code == 200 and whole.text == "0123456789abcdef"


async def test_viewer_conditional_answered_304_from_the_cache(
    origin: RecordingOrigin, start_edge: StartEdge
):
    origin.responses["/etagged"] = OriginResponse(etag='"abc"')
    viewer = await start_edge(distribution(origin.port))
    await viewer.get("/etagged")
    not_modified = await viewer.get("/etagged", headers={"If-None-Match": '"abc"'})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == '"abc"'
    assert not_modified.headers["x-cache"] == "Hit from cloudfront"
    changed = await viewer.get("/etagged", headers={"If-None-Match": '"old"'})
    assert changed.status_code == 200
    assert len(origin.requests_for("/etagged")) == 1


async def test_managed_security_headers_policy(origin: RecordingOrigin, start_edge: StartEdge):
    document = distribution(
        origin.port, response_headers_policy_id="67f7725c-6f97-4210-82d7-5512b31e9d03"
    )
    viewer = await start_edge(document)
    for expected in ("Miss from cloudfront", "Hit from cloudfront"):
        response = await viewer.get("/secure-page")
        assert response.headers["x-cache"] == expected
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert len(origin.requests_for("/secure-page")) == 1


async def test_managed_cors_policy_answers_with_allow_origin(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = distribution(origin.port, response_headers_policy_id="CORS-With-Preflight")
    viewer = await start_edge(document)
    response = await viewer.get("/api", headers={"Origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    without_origin = await viewer.get("/api")
    assert "access-control-allow-origin" not in without_origin.headers


async def test_http10_viewer_gets_and_stores_no_compressed_body(
    origin: RecordingOrigin, start_edge: StartEdge
):
    """CloudFront removes an HTTP/1.0 viewer's Accept-Encoding (reference 7.9): the origin
    does not see it, so a compressing origin answers identity, which the identity key holds."""
    origin.responses["/old.html"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Content-Type": "text/html"},
        body=PAGE,
        gzip_when_asked=True,
    )
    viewer = await start_edge(distribution(origin.port))
    old = await RawViewer.connect(viewer.running.ports["http"])
    try:
        await old.send(
            b"GET /old.html HTTP/1.0\r\nHost: edge.test\r\nAccept-Encoding: gzip\r\n\r\n"
        )
        first = await old.response()
    finally:
        old.writer.close()
    new = await RawViewer.connect(viewer.running.ports["http"])
    try:
        await new.request("GET", "/old.html")  # HTTP/1.1 without Accept-Encoding
        plain = await new.response()
    finally:
        new.writer.close()
    assert plain.header("content-encoding") is None
    assert plain.body == PAGE.encode()
    assert plain.header("x-cache") == "Hit from cloudfront"
    assert "Accept-Encoding" not in origin.requests_for("/old.html")[0].headers
    assert first.header("content-encoding") is None
    assert first.body == PAGE.encode()
    assert len(origin.requests_for("/old.html")) == 1


def _slow_to_compress(at_least_s: float) -> tuple[str, float]:
    """Text that the edge's Brotli coder (its configured quality) takes about ``at_least_s``
    or more to compress on this machine, and that time: seeded random words, sized from a
    timed sample (within CloudFront's 10,000,000-byte limit)."""
    rng = random.Random(7)
    letters = string.ascii_lowercase
    words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(5000)]
    sample = " ".join(rng.choices(words, k=50_000)).encode()
    started = time.perf_counter()
    CODERS["br"](sample)
    per_byte = (time.perf_counter() - started) / len(sample)
    size = min(int(1.3 * at_least_s / per_byte), MAX_BYTES)
    text = " ".join(rng.choices(words, k=size // 5))[:size]
    started = time.perf_counter()
    CODERS["br"](text.encode())
    return text, time.perf_counter() - started


async def test_a_large_body_is_compressed_off_the_event_loop(
    origin: RecordingOrigin, start_edge: StartEdge
):
    """While the edge compresses megabytes (Brotli, seconds of work), it goes on answering
    other viewers. Hits on a cached object are sent one after another for as long as the
    big miss is under way; with compression on the event loop nothing is answered while it
    runs, so some gap between two answers would be as long as the compression itself."""
    text, reference_s = _slow_to_compress(at_least_s=1.0)
    origin.responses["/big.txt"] = OriginResponse(
        headers={"Cache-Control": "max-age=60", "Content-Type": "text/plain"}, body=text
    )
    document = distribution(origin.port, compress=True, cache_policy_id="CachingOptimized")
    document["distribution"]["default_cache_behavior"].pop("forwarded_values")
    viewer = await start_edge(document)
    assert (await viewer.get("/small")).headers["x-cache"] == "Miss from cloudfront"

    big_request = viewer.client.build_request(
        "GET", viewer.running.url("/big.txt"), headers={"Accept-Encoding": "br"}
    )
    big = asyncio.ensure_future(viewer.client.send(big_request, stream=True))
    deadline = time.monotonic() + 60
    while not origin.requests_for("/big.txt"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.001)
    answered = [time.perf_counter()]
    while not big.done():  # done once the compressed answer's head arrives
        assert time.monotonic() < deadline
        hit = await viewer.get("/small")
        assert hit.headers["x-cache"] == "Hit from cloudfront"
        answered.append(time.perf_counter())
    response = await big
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()

    assert response.headers["content-encoding"] == "br"
    assert brotli.decompress(body) == text.encode()
    assert len(answered) > 2  # hits were answered while the big miss was under way
    longest_gap = max(b - a for a, b in zip(answered, answered[1:], strict=False))
    assert longest_gap < reference_s / 3, (longest_gap, reference_s, len(answered))
