"""Compression, ranges, viewer conditionals and response headers policies through a real
edge: response, X-Cache and the origin's request count."""

from __future__ import annotations

import gzip

from conftest import OriginResponse, RecordingOrigin, StartEdge, distribution

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
    first = await viewer.get("/data.txt", headers={"Range": "bytes=2-5"})
    assert first.status_code == 206
    assert first.text == "2345"
    assert first.headers["content-range"] == "bytes 2-5/16"
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert origin.requests_for("/data.txt")[0].headers.get("Range") is None

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
