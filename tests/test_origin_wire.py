"""What crosses the wire toward and from the origin, as CloudFront sends it: the origin's
Transfer-Encoding in the origin-response event and on the viewer's answer, Accept-Encoding
toward the origin, Connection on both sides, and origin custom header names. A raw origin
(tests/fault_origin.py) records the request heads byte for byte and answers exactly the
bytes a test gives it; a raw viewer (tests/viewer_wire.py) reads the answer's framing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RecordingOrigin, StartEdge, distribution, handler
from fault_origin import FaultOrigin, running
from viewer_wire import RawResponse, RawViewer

from edgeproxy.config.loading import load_config
from edgeproxy.errors import ConfigError

VALIDATION = "LambdaValidationError from cloudfront"

# An origin that does not know its length up front: two chunks, then the last one.
CHUNKED_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: max-age=60\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
)


@pytest.fixture
async def raw_origin() -> AsyncIterator[FaultOrigin]:
    async with running(FaultOrigin(mode="reply")) as origin:
        yield origin


def origin_response(spec: str, port: int, **behavior: Any) -> dict[str, Any]:
    hook = {"event_type": "origin-response", "handler": handler(spec)}
    return distribution(port, lambda_function_association=[hook], **behavior)


async def raw_get(port: int, target: str, *headers: str) -> RawResponse:
    viewer = await RawViewer.connect(port)
    try:
        await viewer.request("GET", target, *headers)
        return await viewer.response()
    finally:
        await viewer.close()


# --- 1. Transfer-Encoding from the origin --------------------------------------------------


async def test_origin_response_event_shows_the_origins_transfer_encoding(
    raw_origin: FaultOrigin, start_edge: StartEdge
):
    """The origin's ``Transfer-Encoding: chunked`` is in the origin-response event: it is
    one of that event's read-only headers [DG edge-functions-restrictions, "Read-only headers
    … origin response events: Transfer-Encoding, Via"], and serverless-express#369 shows a
    real origin-response event carrying it (``event.Records[0].cf.response.headers
    ['transfer-encoding']``)."""
    raw_origin.reply = CHUNKED_REPLY
    viewer = await start_edge(
        origin_response("origin_wire.py:note_transfer_encoding", raw_origin.port)
    )
    answer = await raw_get(viewer.running.ports["http"], "/chunked")
    assert answer.status == 200
    assert answer.header("x-seen-transfer-encoding") == "chunked"
    assert answer.body == b"hello world"


async def test_a_function_that_rebuilds_the_headers_without_it_gets_the_502(
    raw_origin: FaultOrigin, start_edge: StartEdge
):
    """A function returning the response with its headers rebuilt from scratch (as
    serverless-express and Mangum-style adapters do) deletes Transfer-Encoding: CloudFront
    answers 502, its log saying "Lambda function result failed validation, the function
    tried to delete read-only header, headerName : Transfer-Encoding."
    [https://github.com/CodeGenieApp/serverless-express/issues/369]."""
    raw_origin.reply = CHUNKED_REPLY
    viewer = await start_edge(origin_response("origin_wire.py:rebuild_headers", raw_origin.port))
    answer = await raw_get(viewer.running.ports["http"], "/chunked")
    assert answer.status == 502
    assert answer.header("x-cache") == VALIDATION
    assert b"The Lambda function result failed validation" in answer.body


async def test_a_chunked_origin_answer_reaches_the_viewer_chunked_miss_and_hit(
    raw_origin: FaultOrigin, start_edge: StartEdge
):
    """"If your origin returns Transfer-Encoding: chunked, CloudFront returns the object to
    the client as the object is received at the edge location, and caches the object in
    chunked format for subsequent requests" [DG RequestAndResponseBehaviorCustomOrigin,
    "Transfer Encoding"]: no Content-Length is known, so the viewer's answer is chunked,
    on the miss and on the hit."""
    raw_origin.reply = CHUNKED_REPLY
    viewer = await start_edge(distribution(raw_origin.port))
    port = viewer.running.ports["http"]
    miss = await raw_get(port, "/chunked")
    hit = await raw_get(port, "/chunked")
    for answer, x_cache in ((miss, "Miss from cloudfront"), (hit, "Hit from cloudfront")):
        assert answer.header("x-cache") == x_cache
        assert answer.chunked, answer.headers
        assert answer.header("content-length") is None
        assert answer.body == b"hello world"
    assert raw_origin.connections == 1 and len(raw_origin.heads) == 1


async def test_an_http10_viewer_gets_a_chunked_origin_answer_with_its_length(
    raw_origin: FaultOrigin, start_edge: StartEdge
):
    """HTTP/1.0 has no chunked coding (RFC 9112 6.1): the body goes with its length."""
    raw_origin.reply = CHUNKED_REPLY
    viewer = await start_edge(distribution(raw_origin.port))
    old = await RawViewer.connect(viewer.running.ports["http"])
    try:
        await old.send(b"GET /chunked HTTP/1.0\r\nHost: edge.test\r\n\r\n")
        answer = await old.response()
    finally:
        await old.close()
    assert answer.header("transfer-encoding") is None
    assert answer.header("content-length") == "11"
    assert answer.body == b"hello world"


# --- 2. Accept-Encoding toward the origin --------------------------------------------------


def with_cache_policy(port: int, policy: str) -> dict[str, Any]:
    document = distribution(port, cache_policy_id=policy)
    del document["distribution"]["default_cache_behavior"]["forwarded_values"]
    return document


def origin_accept_encoding(origin: RecordingOrigin, path: str) -> str | None:
    return origin.requests_for(path)[0].headers.get("Accept-Encoding")


@pytest.mark.parametrize(
    ("policy", "sent", "expected"),
    [
        # [DG controlling-the-cache-key, "Cache compressed objects"]: with Gzip or Brotli
        # caching on, the normalised value; "Accept-Encoding: identity" when the viewer's
        # header holds neither; none when the viewer sent none.
        ("CachingOptimized", "gzip, deflate, br", "br,gzip"),
        ("CachingOptimized", "br;q=1.0, gzip;q=0", "br"),
        ("CachingOptimized", "deflate", "identity"),
        ("CachingOptimized", None, None),
        # Both off: Accept-Encoding is like any other header, not forwarded unless named.
        ("CachingDisabled", "gzip, br", None),
        ("CachingDisabled", "deflate", None),
    ],
)
async def test_accept_encoding_toward_the_origin(
    origin: RecordingOrigin,
    start_edge: StartEdge,
    policy: str,
    sent: str | None,
    expected: str | None,
):
    viewer = await start_edge(with_cache_policy(origin.port, policy))
    headers = {} if sent is None else {"Accept-Encoding": sent}
    # httpx adds its own Accept-Encoding unless told: a raw viewer sends exactly these.
    answer = await raw_get(
        viewer.running.ports["http"], "/ae", *(f"{k}: {v}" for k, v in headers.items())
    )
    assert answer.status == 200
    assert origin_accept_encoding(origin, "/ae") == expected


async def test_an_http10_viewers_accept_encoding_never_reaches_the_origin(
    origin: RecordingOrigin, start_edge: StartEdge
):
    """"If a request to CloudFront uses HTTP 1.0, CloudFront removes the Accept-Encoding
    header" [DG ServingCompressedFiles]: not even ``identity`` goes to the origin, whose
    cache policy normalises Accept-Encoding."""
    viewer = await start_edge(with_cache_policy(origin.port, "CachingOptimized"))
    old = await RawViewer.connect(viewer.running.ports["http"])
    try:
        await old.send(b"GET /ae HTTP/1.0\r\nHost: edge.test\r\nAccept-Encoding: gzip\r\n\r\n")
        answer = await old.response()
    finally:
        await old.close()
    assert answer.status == 200
    assert origin_accept_encoding(origin, "/ae") is None


# --- 3. Connection on both sides -----------------------------------------------------------


def head_lines(head: bytes) -> list[str]:
    return head.decode("latin-1").split("\r\n")[1:-2]


async def test_viewers_and_the_origin_are_told_keep_alive(
    raw_origin: FaultOrigin, start_edge: StartEdge
):
    """Toward the origin, CloudFront "replaces this header with Connection: Keep-Alive"
    [DG RequestAndResponseBehaviorCustomOrigin, request headers table, Connection]; toward an
    HTTP/1.1 viewer it writes ``Connection: keep-alive`` on answers that keep the
    connection (a real CloudFront 301, ``curl -I`` in maslick/redirector's README:
    ``HTTP/1.1 301 Moved Permanently``, ``Content-Length: 0``, ``Connection: keep-alive``,
    ``Server: CloudFront``), miss or hit."""
    viewer = await start_edge(distribution(raw_origin.port))
    raw = await RawViewer.connect(viewer.running.ports["http"])
    try:
        await raw.request("GET", "/page", "Connection: close, X-Hop", "X-Hop: 1")
        miss = await raw.response()
    finally:
        await raw.close()
    hit = await raw_get(viewer.running.ports["http"], "/page")
    assert miss.header("connection") == "close"
    assert hit.header("x-cache") == "Hit from cloudfront"
    assert hit.headers_named("connection") == ["keep-alive"]
    [head] = raw_origin.heads
    assert [line for line in head_lines(head) if line.lower().startswith("connection:")] == [
        "Connection: Keep-Alive"
    ]
    assert not any(line.lower().startswith("x-hop:") for line in head_lines(head))


# --- 4. Origin custom headers --------------------------------------------------------------


async def test_origin_custom_header_names_reach_the_origin_title_cased(
    raw_origin: FaultOrigin, start_edge: StartEdge
):
    """A custom header configured as ``elb-key`` "at the origin it is received as
    ``Elb-Key``" [https://github.com/awsdocs/amazon-cloudfront-developer-guide/issues/70];
    it replaces a viewer's header of the same name [DG add-origin-custom-headers]."""
    document = distribution(raw_origin.port)
    document["distribution"]["origin"][0]["custom_header"] = [
        {"name": "elb-key", "value": "s3cret"},
        {"name": "x-origin-verify", "value": "v"},
    ]
    viewer = await start_edge(document)
    await raw_get(viewer.running.ports["http"], "/page", "ELB-KEY: forged")
    [head] = raw_origin.heads
    lines = head_lines(head)
    assert [line for line in lines if line.lower().startswith("elb-key:")] == ["Elb-Key: s3cret"]
    assert "X-Origin-Verify: v" in lines


# "Custom headers that CloudFront can't add to origin requests" [DG add-origin-custom-headers],
# in the Developer Guide's spelling; the two prefixes are X-Amz- (not only X-Amz-Cf-) and X-Edge-.
REFUSED_BY_CLOUDFRONT = [
    "Cache-Control", "Connection", "Content-Length", "Cookie", "Host", "If-Match",
    "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since", "Max-Forwards",
    "Pragma", "Proxy-Authorization", "Proxy-Connection", "Range", "Request-Range", "TE",
    "Trailer", "Transfer-Encoding", "Upgrade", "Via", "X-Amz-Date", "x-amz-cf-id",
    "X-Edge-Location", "X-Real-Ip",
]  # fmt: skip


@pytest.mark.parametrize("name", REFUSED_BY_CLOUDFRONT)
def test_config_refuses_a_custom_header_cloudfront_cannot_add(tmp_path: Path, name: str):
    document = distribution(8000)
    document["distribution"]["origin"][0]["custom_header"] = [
        {"name": "X-Origin-Verify", "value": "ok"},
        {"name": name, "value": "x"},
    ]
    path = tmp_path / "distribution.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    problems = dict(refused.value.problems)
    assert list(problems) == ["distribution.origin[0].custom_header[1].name"], problems
    assert "CloudFront cannot add" in problems["distribution.origin[0].custom_header[1].name"]
