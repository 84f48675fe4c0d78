"""Request framing the edge refuses before anything runs (RFC 9112 3.2, 6.1, 6.3, 7.1): every
Transfer-Encoding but exactly ``chunked``, Transfer-Encoding on HTTP/1.0, a missing or repeated
Host; and trailers of a chunked request, which are never headers. Raw sockets through a real
edge; a refused request reaches neither the pipeline nor the origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from conftest import RecordingOrigin, StartEdge, distribution
from viewer_wire import RawResponse, RawViewer, SpyEdge, serving

ALL_HEADERS = {"query_string": False, "headers": ["*"], "cookies": {"forward": "none"}}


@dataclass
class Served:
    spy: SpyEdge
    port: int
    origin: RecordingOrigin


@pytest.fixture
async def served(origin: RecordingOrigin, start_edge: StartEdge) -> AsyncIterator[Served]:
    # Every viewer header is forwarded: a trailer merged into the headers would reach the origin.
    viewer = await start_edge(distribution(origin.port, forwarded_values=ALL_HEADERS))
    spy = SpyEdge(viewer.running.edge)
    async with serving(spy) as (_, port):
        yield Served(spy, port, origin)


def _post(*headers: str, version: str = "1.1", host: bool = True) -> bytes:
    lines = [f"POST /upload HTTP/{version}", *(["Host: edge.test"] if host else []), *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


CHUNKED_BODY = b"3\r\nabc\r\n0\r\n\r\n"

REFUSED = [
    # status, raw request, what it is
    (501, _post("Transfer-Encoding: gzip, chunked") + CHUNKED_BODY, "a coding before chunked"),
    (
        501,
        _post("Transfer-Encoding: gzip", "Transfer-Encoding: chunked") + CHUNKED_BODY,
        "gzip and chunked on two lines",
    ),
    (501, _post("Transfer-Encoding: deflate,chunked") + CHUNKED_BODY, "deflate before chunked"),
    (400, _post("Transfer-Encoding: chunked, identity") + CHUNKED_BODY, "chunked not last"),
    (400, _post("Transfer-Encoding: xchunked") + CHUNKED_BODY, "xchunked"),
    (400, _post("Transfer-Encoding: chunked;x=1") + CHUNKED_BODY, "chunked with a parameter"),
    (
        400,
        _post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + CHUNKED_BODY,
        "chunked twice on two lines",
    ),
    (400, _post("Transfer-Encoding: chunked, chunked") + CHUNKED_BODY, "chunked twice"),
    (400, _post("Transfer-Encoding: , chunked") + CHUNKED_BODY, "an empty coding"),
    (
        400,
        _post("Transfer-Encoding: chunked", version="1.0") + CHUNKED_BODY,
        "Transfer-Encoding on HTTP/1.0",
    ),
    (
        400,
        _post("Content-Length: 3", "Transfer-Encoding: chunked") + CHUNKED_BODY,
        "Content-Length before Transfer-Encoding",
    ),
    (
        400,
        _post("Transfer-Encoding: chunked", "Content-Length: 3") + CHUNKED_BODY,
        "Transfer-Encoding before Content-Length",
    ),
    (400, _post("Content-Length: 3", host=False) + b"abc", "HTTP/1.1 without Host"),
    (400, b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", "GET without Host"),
    (400, _post("Host: other.test", "Content-Length: 3") + b"abc", "two Host headers"),
    (400, b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "the same Host twice"),
    (
        400,
        _post("Host: other.test", "Content-Length: 3", version="1.0") + b"abc",
        "two Host headers on HTTP/1.0",
    ),
    (400, b"GET / HTTP/1.1\r\nHost: evil.test/x\r\n\r\n", "a Host with a path"),
    (400, b"GET / HTTP/1.1\r\nHost: user@evil.test\r\n\r\n", "a Host with userinfo"),
    (400, b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "a Host with a blank"),
]


def _assert_refused(response: RawResponse, status: int) -> None:
    assert response.status == status
    assert response.header("x-cache") == "Error from cloudfront"
    assert response.header("server") == "CloudFront"
    assert response.header("connection") == "close"
    assert f"<H1>{status} ERROR</H1>".encode() in response.body


@pytest.mark.parametrize(("status", "raw", "what"), REFUSED, ids=[r[2] for r in REFUSED])
async def test_bad_framing_is_refused_and_nothing_is_forwarded(
    served: Served, status: int, raw: bytes, what: str
):
    viewer = await RawViewer.connect(served.port)
    await viewer.send(raw)
    _assert_refused(await viewer.response(), status)
    assert await viewer.closed_by_server()
    assert served.spy.requests == []
    assert served.origin.seen == []


@pytest.mark.parametrize("coding", ["chunked", "Chunked", " chunked "])
async def test_chunked_alone_is_accepted_in_any_case(served: Served, coding: str):
    viewer = await RawViewer.connect(served.port)
    await viewer.send(_post(f"Transfer-Encoding:{coding}") + CHUNKED_BODY)
    assert (await viewer.response()).status == 200
    (seen,) = served.origin.requests_for("/upload")
    assert await seen.read() == b"abc"
    await viewer.close()


async def test_http10_without_host_is_served(served: Served):
    viewer = await RawViewer.connect(served.port)
    await viewer.send(b"GET /old HTTP/1.0\r\n\r\n")
    assert (await viewer.response()).body == b"origin body for /old"


async def test_trailers_are_never_headers(served: Served):
    viewer = await RawViewer.connect(served.port)
    await viewer.send(
        _post("Transfer-Encoding: chunked", "X-Kept: 1")
        + b"5\r\nhello\r\n0\r\nX-Trailer: smuggled\r\nHost: evil.test\r\n"
        b"Authorization: Bearer forged\r\n\r\n"
    )
    assert (await viewer.response()).status == 200
    (seen,) = served.origin.requests_for("/upload")
    assert await seen.read() == b"hello"
    assert seen.headers["X-Kept"] == "1"
    for name in ("X-Trailer", "Authorization"):
        assert name not in seen.headers
    assert seen.headers.getall("Host") == ["edge.test"]
    (request,) = served.spy.requests
    names = [name.lower() for name, _ in request.headers]
    assert "x-trailer" not in names and "authorization" not in names
    assert names.count("host") == 1
    # The connection goes on: the trailer section was read and dropped.
    await viewer.send(b"GET /after HTTP/1.1\r\nHost: edge.test\r\n\r\n")
    assert (await viewer.response()).body == b"origin body for /after"
    await viewer.close()


async def test_endless_trailers_are_refused(served: Served):
    viewer = await RawViewer.connect(served.port)
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 200) for i in range(120))
    await viewer.send(_post("Transfer-Encoding: chunked") + b"3\r\nabc\r\n0\r\n" + trailers)
    response = await viewer.response()
    assert response.status in (400, 413)
    assert response.header("connection") == "close"
    assert served.origin.seen == []
