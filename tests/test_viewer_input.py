"""Bad viewer input (reference sections 1 and 5, issue 5/6): over-long heads and URLs get
413, malformed requests 400, CONNECT 403; each with CloudFront's error page and headers,
nothing reaches the edge or the origin, and the connection closes. Viewer input never
selects an origin: an absolute-form target gives only its path, the Host header is just
a header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web
from conftest import RecordingOrigin, StartEdge, distribution
from viewer_wire import RawResponse, RawViewer, SpyEdge, serving

from edgeproxy.limits import MAX_REQUEST_HEAD, MAX_URL_LENGTH


@dataclass
class Served:
    spy: SpyEdge
    port: int
    origin: RecordingOrigin


@pytest.fixture
async def served(origin: RecordingOrigin, start_edge: StartEdge) -> AsyncIterator[Served]:
    viewer = await start_edge(distribution(origin.port))
    spy = SpyEdge(viewer.running.edge)
    async with serving(spy) as (_, port):
        yield Served(spy, port, origin)


def _get(target: str = "/", *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: edge.test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


BIG = "a" * 20_000

REFUSED = [
    # status, raw request, what it is
    (413, _get("/", f"X-Big: {BIG}", f"X-Big-2: {'b' * 600}"), "head over 20,480 bytes"),
    (413, _get("/", *[f"X-H{i}: {'v' * 200}" for i in range(110)]), "many headers over 20,480"),
    (413, b"GET / HTTP/1.1\r\nHost: edge.test\r\nX-Endless: " + b"z" * 30_000, "endless header"),
    (413, _get("/" + "u" * MAX_URL_LENGTH), "URL over 8,192 bytes"),
    (413, _get("/" + "u" * 15_000), "URL under the head limit, over the URL limit"),
    (413, b"GET /" + b"u" * 30_000, "endless request line"),
    (
        400,
        b"POST / HTTP/1.1\r\nHost: e\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        "Content-Length with Transfer-Encoding",
    ),
    (
        400,
        b"POST / HTTP/1.1\r\nHost: e\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        "duplicate differing Content-Length",
    ),
    (400, b"POST / HTTP/1.1\r\nHost: e\r\nContent-Length: 3, 4\r\n\r\nabcd", "Content-Length list"),
    (400, b"POST / HTTP/1.1\r\nHost: e\r\nContent-Length: -1\r\n\r\n", "negative Content-Length"),
    (400, b"POST / HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: gzip\r\n\r\n", "unknown coding"),
    (400, b"GET / HTTP/1.1\r\nHost: e\r\nX-A: b\r\n folded\r\n\r\n", "obsolete line folding"),
    (400, b"GET / HTTP/1.1\r\nHost: e\r\nX A: b\r\n\r\n", "space in a header name"),
    (400, b"GET / HTTP/1.1\r\nHost : e\r\n\r\n", "space before the colon"),
    (400, b"GET / HTTP/1.1\r\nHost: e\r\nX-A: a\x00b\r\n\r\n", "NUL in a header value"),
    (400, b"GET / HTTP/1.1\r\nHost: e\r\nX-A: a\x01b\r\n\r\n", "control byte in a value"),
    (400, b"GET / HTTP/1.1\nHost: e\n\n", "bare LF line ends"),
    (400, b"GET / HTTP/1.1\r\nHost: e\nX-A: b\r\n\r\n", "bare LF inside the head"),
    (400, b"GET / HTTP/1.1\r\nHost: e\rX-A: b\r\n\r\n", "bare CR inside the head"),
    (400, b"G@T / HTTP/1.1\r\nHost: e\r\n\r\n", "invalid method"),
    (400, b"BREW / HTTP/1.1\r\nHost: e\r\n\r\n", "unknown method"),
    (400, b" GET / HTTP/1.1\r\nHost: e\r\n\r\n", "leading space"),
    (400, b"GET /a b HTTP/1.1\r\nHost: e\r\n\r\n", "space in the target"),
    (400, b"GET /\xe9 HTTP/1.1\r\nHost: e\r\n\r\n", "raw non-ASCII in the target"),
    (400, b"GET / HTTP/1.7\r\nHost: e\r\n\r\n", "unknown HTTP version"),
    (400, b"GET / HTTP/2.0\r\nHost: e\r\n\r\n", "HTTP/2 on an HTTP/1 connection"),
    (400, b"GET /\r\n\r\n", "HTTP/0.9"),
    (400, b"OPTIONS * HTTP/1.1\r\nHost: e\r\n\r\n", "asterisk-form"),
    (400, b"GET ftp://evil.example/x HTTP/1.1\r\nHost: e\r\n\r\n", "absolute-form, other scheme"),
    (403, b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", "CONNECT"),
]


def _assert_cloudfront_error(response: RawResponse, status: int) -> None:
    assert response.status == status
    assert response.header("x-cache") == "Error from cloudfront"
    assert response.header("server") == "CloudFront"
    assert response.header("connection") == "close"
    request_id = response.header("x-amz-cf-id") or ""
    assert len(request_id) == 56 and request_id.endswith("==")
    assert (response.header("via") or "").endswith(".cloudfront.net (CloudFront)")
    assert response.header("x-amz-cf-pop")
    assert response.header("date")
    assert f"<H1>{status} ERROR</H1>".encode() in response.body
    assert f"Request ID: {request_id}".encode() in response.body


@pytest.mark.parametrize(("status", "raw", "what"), REFUSED, ids=[r[2] for r in REFUSED])
async def test_bad_input_is_refused_and_nothing_is_forwarded(
    served: Served, status: int, raw: bytes, what: str
):
    viewer = await RawViewer.connect(served.port)
    await viewer.send(raw)
    _assert_cloudfront_error(await viewer.response(), status)
    assert await viewer.closed_by_server()
    assert served.spy.requests == []
    assert served.origin.seen == []


async def test_head_of_exactly_the_limit_is_served(served: Served):
    # request line + Host + three X-Pad headers (each under the test origin's own line
    # limit) + blank line = 20,480 bytes exactly
    empty = _get("/", "X-Pad: ", "X-Pad: ", "X-Pad: ")
    pad = MAX_REQUEST_HEAD - len(empty)
    sizes = [pad // 3, pad // 3, pad - 2 * (pad // 3)]
    request = _get("/", *[f"X-Pad: {'p' * n}" for n in sizes])
    assert len(request) == MAX_REQUEST_HEAD
    viewer = await RawViewer.connect(served.port)
    await viewer.send(request)
    assert (await viewer.response()).status == 200
    await viewer.send(
        _get("/", *[f"X-Pad: {'p' * n}" for n in sizes[:2]], f"X-Pad: {'p' * (sizes[2] + 1)}")
    )
    _assert_cloudfront_error(await viewer.response(), 413)
    await viewer.close()


async def test_bad_request_after_good_ones_is_answered_in_turn(served: Served):
    viewer = await RawViewer.connect(served.port)
    bad = b"GET / HTTP/1.1\r\nX A: b\r\n\r\n"
    await viewer.send(_get("/one") + _get("/two") + bad + _get("/three"))
    assert (await viewer.response()).body == b"origin body for /one"
    assert (await viewer.response()).body == b"origin body for /two"
    _assert_cloudfront_error(await viewer.response(), 400)
    assert await viewer.closed_by_server()
    assert [r.path for r in served.origin.seen] == ["/one", "/two"]


async def test_url_limit_is_the_edges_413_not_a_parser_400(served: Served):
    viewer = await RawViewer.connect(served.port)
    await viewer.send(_get("/" + "u" * (MAX_URL_LENGTH - 3) + "?q"))  # 8,192 bytes: served
    assert (await viewer.response()).status == 200
    await viewer.send(_get("/" + "u" * MAX_URL_LENGTH))  # 8,193 bytes
    _assert_cloudfront_error(await viewer.response(), 413)
    await viewer.close()


@pytest.fixture
async def elsewhere() -> AsyncIterator[RecordingOrigin]:
    """A second server an open proxy would reach: it must never see a request."""
    other = RecordingOrigin()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", other.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    other.port = runner.addresses[0][1]
    yield other
    await runner.cleanup()


@pytest.mark.parametrize("scheme", ["http", "HTTP", "https"])
async def test_absolute_form_target_gives_only_its_path(
    served: Served, elsewhere: RecordingOrigin, scheme: str
):
    viewer = await RawViewer.connect(served.port)
    target = f"{scheme}://127.0.0.1:{elsewhere.port}/secret/page?x=1#frag"
    await viewer.send(_get(target))
    response = await viewer.response()
    assert response.body == b"origin body for /secret/page"
    (request,) = served.spy.requests
    assert (request.uri, request.querystring) == ("/secret/page", "x=1")
    assert [r.path for r in served.origin.seen] == ["/secret/page"]
    assert elsewhere.seen == []
    await viewer.close()


async def test_host_header_never_selects_an_origin(served: Served, elsewhere: RecordingOrigin):
    viewer = await RawViewer.connect(served.port)
    await viewer.send(b"GET /p HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % elsewhere.port)
    assert (await viewer.response()).body == b"origin body for /p"
    assert [r.path for r in served.origin.seen] == ["/p"]
    assert elsewhere.seen == []
    await viewer.close()


async def test_get_with_a_body_hands_the_body_to_the_pipeline(served: Served):
    # CloudFront answers 403 (reference 1, step 1): a rule of the pipeline's, which decides
    # it from EdgeRequest.has_body; the server only has to pass the body on.
    viewer = await RawViewer.connect(served.port)
    await viewer.request("GET", "/with-body", body=b"unexpected")
    assert (await viewer.response()).status == 403
    assert served.spy.requests[0].method == "GET"
    assert served.spy.requests[0].has_body
    assert served.origin.seen == []
    await viewer.close()


async def test_a_malformed_chunk_fails_its_request_and_nothing_reaches_the_origin(
    served: Served,
):
    # The request was handed over with its head; its body fails where it breaks, and the
    # request answers with that failure: the origin never gets a complete request.
    viewer = await RawViewer.connect(served.port)
    await viewer.send(
        b"POST /bad HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\nzz\r\n"
    )
    _assert_cloudfront_error(await viewer.response(), 400)
    assert await viewer.closed_by_server()
    assert served.origin.seen == []


async def test_bytes_after_a_websocket_handshake_are_never_read_as_requests(served: Served):
    # A WebSocket handshake (test_upgrade.py): this origin answers it as a plain GET (no
    # 101), so the connection closes after that answer; what followed is not HTTP.
    viewer = await RawViewer.connect(served.port)
    await viewer.send(_get("/ws", "Connection: Upgrade", "Upgrade: websocket") + _get("/after"))
    answer = await viewer.response()
    assert answer.body == b"origin body for /ws"
    assert answer.header("connection") == "close"
    assert await viewer.closed_by_server()
    assert [r.path for r in served.origin.seen] == ["/ws"]
