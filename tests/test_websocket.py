"""The WebSocket tunnel: a GET with ``Upgrade: websocket`` is tunnelled to the origin as
CloudFront does, on any behavior: viewer protocol policy, viewer-request and origin-request
run on the handshake (either may answer instead), no cache lookup and nothing stored, the
origin's 101 relayed with CloudFront's headers, then bytes both ways until either side
closes or the origin stays silent; the exchange is recorded and logged as CloudFront logs a
WebSocket. A real aiohttp WebSocket origin, aiohttp's WebSocket client, raw sockets, and
the misbehaving origins of fault_origin.py."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from conftest import StartEdge, handler
from fault_origin import FaultOrigin, never_accepting_port, refused_port
from fault_origin import running as running_faulty
from multidict import CIMultiDict
from test_https import ca_file
from test_origin_faults import FAULTS, assert_nothing_cached, fast
from viewer_wire import RawResponse, RawViewer, serving
from websocket_origin import (
    WAIT_S,
    WS_TIMEOUT,
    WebSocketOrigin,
    edge_port,
    handshake,
    log_lines,
    masked_text_frame,
    running,
    websocket_distribution,
)


@pytest.fixture
async def ws_origin() -> AsyncIterator[WebSocketOrigin]:
    async with running(WebSocketOrigin()) as recording:
        yield recording


PASS_AND_MARK = [
    {"event_type": "viewer-request", "handler": handler("flow_passthrough.py")},
    {"event_type": "origin-request", "handler": handler("flow_passthrough.py")},
    {"event_type": "origin-response", "handler": handler("flow_mark.py:origin_response")},
    {"event_type": "viewer-response", "handler": handler("flow_mark.py:viewer_response")},
]


async def test_websocket_is_tunnelled_never_cached_and_recorded(
    ws_origin: WebSocketOrigin, start_edge: StartEdge, caplog: pytest.LogCaptureFixture
):
    viewer = await start_edge(websocket_distribution(ws_origin, PASS_AND_MARK))
    # /ws as a plain GET is an object like any other: stored, then a hit
    assert (await viewer.get("/ws")).headers["x-cache"] == "Miss from cloudfront"
    assert (await viewer.get("/ws")).headers["x-cache"] == "Hit from cloudfront"

    heads: list[CIMultiDict[str]] = []

    async def on_request_end(_s: Any, _c: Any, params: aiohttp.TraceRequestEndParams) -> None:
        heads.append(CIMultiDict(params.response.headers))

    tracing = aiohttp.TraceConfig()
    tracing.on_request_end.append(on_request_end)
    with caplog.at_level(logging.INFO, logger="edgeproxy.access"):
        async with aiohttp.ClientSession(trace_configs=[tracing]) as session:
            for _ in range(2):  # the second handshake goes to the origin again
                async with session.ws_connect(viewer.running.url("/ws"), timeout=WS_TIMEOUT) as ws:
                    await ws.send_str("hello through the edge")
                    text = await ws.receive(timeout=WAIT_S)
                    assert text.type is aiohttp.WSMsgType.TEXT
                    assert text.data == "hello through the edge"
                    await ws.send_bytes(b"\x00\xffbinary\x81")
                    binary = await ws.receive(timeout=WAIT_S)
                    assert binary.type is aiohttp.WSMsgType.BINARY
                    assert binary.data == b"\x00\xffbinary\x81"
                assert ws.closed and ws.close_code == aiohttp.WSCloseCode.OK
        lines = await log_lines(caplog, "\tws\t", 2)

    assert len(ws_origin.upgrades("/ws")) == 2
    for head in heads:
        assert head["x-cache"] == "Miss from cloudfront"  # CloudFront logs WebSocket as Miss
        assert head["via"].endswith(".cloudfront.net (CloudFront)")
        assert len(head["x-amz-cf-id"]) == 56
        assert "x-origin-response" not in head and "x-viewer-response" not in head
    exchanges = (await viewer.exchanges())[-2:]
    for exchange in exchanges:
        assert exchange["status"] == 101
        assert exchange["x_cache"] == "Miss from cloudfront"
        assert exchange["stages"] == ["viewer-request", "origin-request"]
        assert exchange["origin_fetches"] == 1
    stats = await viewer.stats()
    assert (stats["cache"]["hits"], stats["cache"]["misses"]) == (1, 1)  # no lookup at all
    assert stats["cache"]["entries"] == 1  # the plain page; nothing of the sockets
    assert stats["responses"]["Miss from cloudfront"] == 3

    # one access line per WebSocket, written when it closed: ws, 101, Miss, bytes both ways
    assert len(lines) == 2
    for line in lines:
        fields = line.split("\t")
        assert (fields[5], fields[7], fields[8], fields[13]) == ("GET", "/ws", "101", "Miss")
        assert int(fields[3]) > 0 and int(fields[17]) > 0  # sc-bytes, cs-bytes


async def test_websocket_handshake_and_frames_on_the_wire(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    viewer = await start_edge(websocket_distribution(ws_origin))
    raw = await RawViewer.connect(edge_port(viewer))
    request, accept = handshake("/ws", "Sec-WebSocket-Protocol: chat")
    # a GET pipelined before the handshake, and a frame sent right behind it (before the 101)
    await raw.send(b"GET /page HTTP/1.1\r\nHost: edge.test\r\n\r\n" + request)
    await raw.send(masked_text_frame("early"))
    assert (await raw.response()).body == b"origin body for /page"
    head = await raw.response(head_only=True)
    assert head.status == 101
    assert head.header("upgrade") == "websocket"
    assert head.header("connection") == "Upgrade"
    assert head.header("sec-websocket-accept") == accept
    assert head.header("x-cache") == "Miss from cloudfront"
    assert head.header("x-amz-cf-pop") and head.header("x-amz-cf-id")
    assert head.header("content-length") is None and head.header("transfer-encoding") is None
    early = await asyncio.wait_for(raw.reader.readexactly(7), WAIT_S)
    assert early == b"\x81\x05early"
    await raw.send(masked_text_frame("ping"))
    echoed = await asyncio.wait_for(raw.reader.readexactly(6), WAIT_S)
    assert echoed == b"\x81\x04ping"  # the origin's own frame, byte for byte
    await raw.close()
    sent = ws_origin.upgrades("/ws")[0]
    assert sent.headers["Connection"] == "Upgrade"
    assert sent.headers["Sec-WebSocket-Protocol"] == "chat"
    assert sent.headers["Via"].endswith("(CloudFront)")


async def test_viewer_request_may_refuse_the_upgrade(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    gate = [
        {"event_type": "viewer-request", "handler": handler("websocket_gate.py:viewer_request")}
    ]
    viewer = await start_edge(websocket_distribution(ws_origin, gate))
    raw = await RawViewer.connect(edge_port(viewer))
    request, _ = handshake("/ws")
    await raw.send(request)
    refused = await raw.response()
    assert refused.status == 401 and refused.body == b"no token, no socket"
    assert refused.header("x-cache") == "LambdaGeneratedResponse from cloudfront"
    assert refused.header("connection") == "close"
    assert await raw.closed_by_server()
    assert ws_origin.seen == []

    async with aiohttp.ClientSession() as session:
        url = viewer.running.url("/ws?token=letmein")
        async with session.ws_connect(url, timeout=WS_TIMEOUT) as ws:
            await ws.send_str("let in")
            assert (await ws.receive(timeout=WAIT_S)).data == "let in"
    assert len(ws_origin.upgrades("/ws")) == 1
    assert (await viewer.last_stages()) == ["viewer-request"]


async def test_origin_refusing_the_upgrade_is_a_normal_answer(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    viewer = await start_edge(websocket_distribution(ws_origin))
    raw = await RawViewer.connect(edge_port(viewer))
    request, _ = handshake("/refuse")
    await raw.send(request)
    answer = await raw.response()
    assert answer.status == 403 and answer.body == b"no sockets here"
    assert answer.header("x-cache") == "Error from cloudfront"
    assert answer.header("connection") == "close"
    assert await raw.closed_by_server()
    assert len(ws_origin.upgrades("/refuse")) == 1  # the origin did see the handshake
    assert (await viewer.stats())["cache"]["entries"] == 0


async def test_without_the_websocket_headers_forwarded_the_origin_refuses(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    # A cache policy alone forwards no viewer header: Sec-WebSocket-Key never reaches the
    # origin, which refuses the handshake (CloudFront's page asks for AllViewer or those two).
    document = websocket_distribution(ws_origin)
    document["distribution"]["default_cache_behavior"].pop("origin_request_policy_id")
    viewer = await start_edge(document)
    raw = await RawViewer.connect(edge_port(viewer))
    request, _ = handshake("/ws")
    await raw.send(request)
    answer = await raw.response()
    assert answer.status == 200  # the origin's plain page: its answer to a bad handshake
    assert answer.body == b"origin body for /ws"
    assert answer.header("connection") == "close"
    await raw.close()
    sent = ws_origin.upgrades("/ws")
    assert len(sent) == 1 and "Sec-WebSocket-Key" not in sent[0].headers
    assert (await viewer.stats())["cache"]["entries"] == 0  # an answer to a handshake


async def test_a_tunnel_counts_against_the_connection_cap(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    viewer = await start_edge(websocket_distribution(ws_origin))
    async with serving(viewer.running.edge, max_connections=1) as (_, port):
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/ws"
            async with session.ws_connect(url, timeout=WS_TIMEOUT) as ws:
                other = await RawViewer.connect(port)
                assert await other.closed_by_server()  # refused: the tunnel holds the one slot
                await ws.send_str("still here")
                assert (await ws.receive(timeout=WAIT_S)).data == "still here"
            # closed: the slot is free again (the edge sees the close a moment later)
            for _ in range(int(WAIT_S / 0.05)):
                raw = await RawViewer.connect(port)
                await raw.request("GET", "/free")
                try:
                    answer: RawResponse | None = await raw.response()
                except (asyncio.IncompleteReadError, ConnectionError):
                    answer = None
                await raw.close()
                if answer is not None:
                    break
                await asyncio.sleep(0.05)
            assert answer is not None and answer.status == 200


async def test_an_idle_tunnel_is_closed(ws_origin: WebSocketOrigin, start_edge: StartEdge):
    viewer = await start_edge(websocket_distribution(ws_origin))
    async with serving(viewer.running.edge, tunnel_idle_timeout=0.5) as (server, port):
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{port}/quiet"
            async with session.ws_connect(url, timeout=WS_TIMEOUT, autoping=False) as ws:
                message = await ws.receive(timeout=WAIT_S)  # the origin never sends
                assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        for _ in range(int(WAIT_S / 0.05)):
            if not server.context.connections:
                break
            await asyncio.sleep(0.05)
        assert not server.context.connections
    assert len(ws_origin.upgrades("/quiet")) == 1


async def test_wss_through_the_https_listener_and_the_protocol_policy(
    ws_origin: WebSocketOrigin, start_edge: StartEdge, caplog: pytest.LogCaptureFixture
):
    document = websocket_distribution(ws_origin, viewer_protocol_policy="https-only")
    document["edge"]["listeners"]["https_port"] = 0
    viewer = await start_edge(document)
    # the viewer protocol policy applies to WebSocket connections too (CloudFront's page)
    raw = await RawViewer.connect(edge_port(viewer))
    request, _ = handshake("/ws")
    await raw.send(request)
    refused = await raw.response()
    assert refused.status == 403 and refused.header("x-cache") == "Error from cloudfront"
    assert await raw.closed_by_server()
    assert ws_origin.seen == []

    context = ssl.create_default_context(cafile=ca_file(viewer))
    with caplog.at_level(logging.INFO, logger="edgeproxy.access"):
        async with aiohttp.ClientSession() as session:
            url = viewer.running.url("/ws", "https")
            async with session.ws_connect(url, ssl=context, timeout=WS_TIMEOUT) as ws:
                await ws.send_str("over TLS")
                assert (await ws.receive(timeout=WAIT_S)).data == "over TLS"
        lines = await log_lines(caplog, "\twss\t", 1)
    assert len(lines) == 1 and "\t101\t" in lines[0]
    assert len(ws_origin.upgrades("/ws")) == 1


async def test_a_viewer_gone_mid_tunnel_closes_the_origin_side(
    ws_origin: WebSocketOrigin, start_edge: StartEdge
):
    viewer = await start_edge(websocket_distribution(ws_origin))
    raw = await RawViewer.connect(edge_port(viewer))
    request, _ = handshake("/ws")
    await raw.send(request)
    assert (await raw.response(head_only=True)).status == 101
    raw.writer.transport.abort()  # no close frame: the TCP connection just ends
    for _ in range(int(WAIT_S / 0.05)):
        if ws_origin.ended:
            break
        await asyncio.sleep(0.05)
    assert ws_origin.ended == ["/ws"]


@pytest.mark.parametrize(("mode", "status"), FAULTS)
async def test_origin_fault_during_the_handshake_is_cloudfronts_error(
    mode: str, status: int, start_edge: StartEdge
):
    async with running_faulty(FaultOrigin(mode=mode)) as faulty:
        viewer = await start_edge(fast(faulty.port))
        raw = await RawViewer.connect(edge_port(viewer))
        request, _ = handshake("/ws")
        await raw.send(request)
        answer = await raw.response()
        assert answer.status == status
        assert answer.header("x-cache") == "Error from cloudfront"
        assert f"<H1>{status} ERROR</H1>".encode() in answer.body
        assert await raw.closed_by_server()
        assert faulty.connections == 1
        assert mode == "close" or b"\r\nUpgrade: websocket\r\n" in faulty.heads[0]
        await assert_nothing_cached(viewer)


async def test_an_origin_refusing_connections_is_502(start_edge: StartEdge):
    viewer = await start_edge(fast(refused_port(), attempts=3))
    raw = await RawViewer.connect(edge_port(viewer))
    request, _ = handshake("/ws")
    await raw.send(request)
    assert (await raw.response()).status == 502
    await raw.close()


async def test_an_origin_accepting_nothing_is_504(start_edge: StartEdge):
    with never_accepting_port() as port:
        viewer = await start_edge(fast(port))
        raw = await RawViewer.connect(edge_port(viewer))
        request, _ = handshake("/ws")
        await raw.send(request)
        assert (await raw.response()).status == 504
        await raw.close()
