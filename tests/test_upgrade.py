"""Upgrade is not a way in. A request with ``Connection: Upgrade`` that is not a WebSocket
handshake (``Upgrade: h2c`` from ``curl --http2``, any other protocol, a POST asking for
WebSocket) is framed like any other request: its body by Content-Length or chunks, never read
as a next request (request smuggling), no 101, and its upgrade headers never forwarded.
Raw sockets on both sides of a real edge. (The WebSocket tunnel: test_websocket.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import StartEdge
from viewer_wire import RawViewer
from websocket_origin import (
    WebSocketOrigin,
    edge_port,
    handshake,
    running,
    websocket_distribution,
)

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"  # a valid request as a body


@pytest.fixture
async def ws_origin() -> AsyncIterator[WebSocketOrigin]:
    async with running(WebSocketOrigin()) as recording:
        yield recording


def _h2c_post(body: bytes, *, chunked: bool) -> bytes:
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (
        "POST /form HTTP/1.1\r\nHost: edge.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        f"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n{framing}\r\n\r\n"
    ).encode()
    return head + (b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if chunked else body)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_h2c_upgrade_body_is_framed_never_a_second_request(
    ws_origin: WebSocketOrigin, start_edge: StartEdge, chunked: bool
):
    viewer = await start_edge(websocket_distribution(ws_origin))
    raw = await RawViewer.connect(edge_port(viewer))
    await raw.send(_h2c_post(SMUGGLED, chunked=chunked))
    answer = await raw.response()
    assert answer.status == 200  # the edge speaks HTTP/1.1: no 101 to h2c
    assert answer.body == b"origin body for /form"
    await raw.request("GET", "/after")  # the same connection goes on with the next request
    assert (await raw.response()).body == b"origin body for /after"
    await raw.close()

    assert [(s.method, s.path) for s in ws_origin.seen] == [("POST", "/form"), ("GET", "/after")]
    sent = ws_origin.seen[0]
    assert sent.body == SMUGGLED
    for name in ("Upgrade", "HTTP2-Settings"):
        assert name not in sent.headers
    assert "upgrade" not in sent.headers.get("Connection", "").lower()


async def test_any_other_upgrade_is_ignored_and_not_forwarded(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    viewer = await start_edge(websocket_distribution(ws_origin))
    raw = await RawViewer.connect(edge_port(viewer))
    # HTTP2-Settings not named in Connection: still a hop-by-hop header of this upgrade
    await raw.request(
        "GET", "/page", "Connection: Upgrade", "Upgrade: h2c", "HTTP2-Settings: AAMAAABk"
    )
    answer = await raw.response()
    assert answer.status == 200
    assert answer.header("upgrade") is None
    await raw.request("GET", "/page", "Connection: upgrade", "Upgrade: TLS/1.2, foo")
    second = await raw.response()
    assert second.status == 200 and second.header("x-cache") == "Hit from cloudfront"
    await raw.close()
    assert len(ws_origin.seen) == 1
    for name in ("Upgrade", "HTTP2-Settings"):
        assert name not in ws_origin.seen[0].headers


async def test_upgrade_websocket_on_a_post_is_not_a_tunnel(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    viewer = await start_edge(websocket_distribution(ws_origin))
    raw = await RawViewer.connect(edge_port(viewer))
    request, _ = handshake("/ws", f"Content-Length: {len(SMUGGLED)}", method="POST")
    await raw.send(request + SMUGGLED)
    answer = await raw.response()
    assert answer.status == 200
    assert answer.body == b"origin body for /ws"
    await raw.close()
    assert [(s.method, s.path, s.body) for s in ws_origin.seen] == [("POST", "/ws", SMUGGLED)]
    assert "Upgrade" not in ws_origin.seen[0].headers


async def test_expect_100_continue_on_an_h2c_upgrade_is_answered_once(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    viewer = await start_edge(websocket_distribution(ws_origin))
    raw = await RawViewer.connect(edge_port(viewer))
    head = _h2c_post(SMUGGLED, chunked=False)[: -len(SMUGGLED)]
    await raw.send(head.replace(b"Upgrade: h2c", b"Expect: 100-continue\r\nUpgrade: h2c"))
    interim = await raw.response(head_only=True)
    assert interim.status == 100
    await raw.send(SMUGGLED)
    answer = await raw.response()
    assert (answer.status, answer.body) == (200, b"origin body for /form")
    await raw.request("GET", "/after")
    assert (await raw.response()).body == b"origin body for /after"
    await raw.close()
    assert [(s.path, s.body) for s in ws_origin.seen] == [("/form", SMUGGLED), ("/after", b"")]


async def test_many_pipelined_upgrade_requests_are_each_framed(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    # 100 h2c POSTs sent at once, each with a request as its body: 100 answers, in order,
    # never a /smuggled
    viewer = await start_edge(websocket_distribution(ws_origin))
    raw = await RawViewer.connect(edge_port(viewer))
    await raw.send(_h2c_post(SMUGGLED, chunked=False) * 100)
    for _ in range(100):
        assert (await raw.response()).body == b"origin body for /form"
    await raw.close()
    assert {s.path for s in ws_origin.seen} == {"/form"} and len(ws_origin.seen) == 100
