"""Every response head the edge writes is checked once, at the writer, whatever produced it:
a reason phrase or header with CR, LF or NUL, a header name that is not a token, or a head
that cannot be encoded never reaches the viewer's wire; CloudFront's 502 page goes instead.
Upstream, the config refuses header names and values it would write, and a Host header that
is not a host never builds a redirect's Location. Flow tests use a real edge, a raw origin
(tests/fault_origin.py) and raw viewer sockets; the encoder is also tested directly."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import StartEdge, distribution
from fault_origin import OK_BODY, FaultOrigin, running
from viewer_wire import exchange_bytes, single_response

from edgeproxy.config.loading import load_config
from edgeproxy.errors import ConfigError
from edgeproxy.messages import EdgeResponse
from edgeproxy.server.head import DateHeader, UnsafeHead, encode_head

EDGE_ERROR = "Error from cloudfront"


def get(path: str, host: bytes = b"edge.test", method: str = "GET") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (
        method.encode(),
        path.encode(),
        host,
    )


def encoded(response: EdgeResponse) -> bytes:
    return encode_head(response, DateHeader(), head_only=False, keep_alive=True, http10=False).data


# --- the encoder itself ------------------------------------------------------------------------

BAD_HEADS = [
    pytest.param(200, "OK\r\nSet-Cookie: a=1", [], id="reason-crlf"),
    pytest.param(200, "OK\r\n\r\nHTTP/1.1 200 OK", [], id="reason-second-response"),
    pytest.param(200, "OK\nSet-Cookie: a=1", [], id="reason-lf"),
    pytest.param(200, "OK\rSet-Cookie: a=1", [], id="reason-cr"),
    pytest.param(200, "O\x00K", [], id="reason-nul"),
    pytest.param(200, "O\ud800K", [], id="reason-unencodable"),
    pytest.param(200, "", [("X-A", "1\r\nSet-Cookie: a=1")], id="value-crlf"),
    pytest.param(200, "", [("X-A", "1\nSet-Cookie: a=1")], id="value-lf"),
    pytest.param(200, "", [("X-A", "1\rSet-Cookie: a=1")], id="value-cr"),
    pytest.param(200, "", [("X-A", "1\x00")], id="value-nul"),
    pytest.param(200, "", [("X-A", "\ud800")], id="value-unencodable"),
    pytest.param(200, "", [("Set-Cookie: a=1\r\nX-A", "1")], id="name-crlf"),
    pytest.param(200, "", [("X A", "1")], id="name-space"),
    pytest.param(200, "", [("X-A:", "1")], id="name-colon"),
    pytest.param(200, "", [("", "1")], id="name-empty"),
    pytest.param(200, "", [("X-\u00e9", "1")], id="name-not-ascii"),
    pytest.param(200, "", [("X-A", "1"), ("Date\x00", "x")], id="watched-length-name-nul"),
    pytest.param(1000, "", [], id="status-four-digits"),
]


@pytest.mark.parametrize(("status", "reason", "headers"), BAD_HEADS)
def test_encoder_refuses_a_head_that_would_split(
    status: int, reason: str, headers: list[tuple[str, str]]
) -> None:
    with pytest.raises(UnsafeHead):
        encoded(EdgeResponse(status, headers, b"body", reason))


def test_encoder_keeps_what_http_allows() -> None:
    """HTAB and obs-text in values and reasons (RFC 9110), a non-Latin-1 value (as UTF-8),
    an origin's Latin-1 reason (kept as its bytes), every token character in a name."""
    headers = [
        ("X-Tab", "a\tb"),
        ("X-Obs", "caf\u00e9"),
        ("X-Utf8", "\u010d"),
        ("!#$%&'*+-.^_`|~09az", "1"),
    ]
    data = encoded(EdgeResponse(200, headers, b"", "Tr\u00e8s\tbien"))
    assert data.startswith(b"HTTP/1.1 200 Tr\xc3\xa8s\tbien\r\n")  # one non-Latin-1: UTF-8
    assert b"\r\nX-Tab: a\tb\r\n" in data and b"\r\nX-Utf8: \xc4\x8d\r\n" in data
    assert b"\r\n!#$%&'*+-.^_`|~09az: 1\r\n" in data
    latin1 = encoded(EdgeResponse(200, [("X-Obs", "caf\u00e9")], b"", "R\udce9ussi"))
    assert latin1.startswith(b"HTTP/1.1 200 R\xe9ussi\r\n")


# --- through the edge: what an origin can get past aiohttp -----------------------------------


@pytest.fixture
async def faulty() -> AsyncIterator[FaultOrigin]:
    async with running(FaultOrigin()) as origin:
        yield origin


def in_front_of(origin: FaultOrigin, **edge: Any) -> dict[str, Any]:
    document = distribution(origin.port)
    document["edge"].update(edge)
    return document


def assert_cloudfront_502(data: bytes) -> None:
    answer = single_response(data)
    assert answer.status == 502
    assert answer.header("x-cache") == EDGE_ERROR
    assert b"<H1>502 ERROR</H1>" in answer.body
    assert (answer.header("x-amz-cf-id") or "-").encode() in answer.body
    assert b"\x00" not in data and OK_BODY not in data


async def test_origin_reason_with_nul_is_replaced_by_cloudfronts_502(
    faulty: FaultOrigin, start_edge: StartEdge, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp accepts a NUL in an origin's reason phrase; the writer refuses it, on the miss
    (the full flow) and on the hit that follows (the quick hit path), which share it."""
    faulty.mode = "reason_nul"
    viewer = await start_edge(in_front_of(faulty))
    port = viewer.running.ports["http"]
    with caplog.at_level(logging.ERROR, logger="edgeproxy.server"):
        miss = await exchange_bytes(port, get("/nul"))
        hit = await exchange_bytes(port, get("/nul"))
    assert_cloudfront_502(miss)
    assert_cloudfront_502(hit)
    assert faulty.connections == 1  # the second answer came from the cache
    refused = [r.getMessage() for r in caplog.records if "unsafe response head" in r.getMessage()]
    assert len(refused) == 2 and "reason" in refused[0] and "'\\x00'" in refused[0], refused


async def test_streamed_origin_answer_with_nul_reason_is_replaced(
    faulty: FaultOrigin, start_edge: StartEdge
) -> None:
    faulty.mode = "reason_nul_stream"
    viewer = await start_edge(in_front_of(faulty, cache={"max_object_bytes": 1024}))
    data = await exchange_bytes(viewer.running.ports["http"], get("/stream"))
    assert_cloudfront_502(data)
    assert b"x" * 1024 not in data


async def test_origin_reason_in_latin1_is_sent_as_its_bytes(
    faulty: FaultOrigin, start_edge: StartEdge
) -> None:
    """Not UTF-8: aiohttp gives it surrogate escapes; the writer sends the origin's bytes."""
    faulty.mode = "reason_latin1"
    viewer = await start_edge(in_front_of(faulty))
    for _ in range(2):  # the miss, then the hit
        data = await exchange_bytes(viewer.running.ports["http"], get("/latin1"))
        answer = single_response(data)
        assert data.startswith(b"HTTP/1.1 200 R\xe9ussi\r\n")
        assert answer.body == OK_BODY


# --- upstream: the config refuses what it would write ------------------------------------------

B = "distribution.default_cache_behavior"
RHP = f"{B}.response_headers_policy"


def policy(**config: Any) -> dict[str, Any]:
    return {
        "cache_policy_id": "CachingOptimized",
        "response_headers_policy": {"name": "p", **config},
    }


def custom(header: str, value: str) -> dict[str, Any]:
    item = {"header": header, "value": value, "override": True}
    return policy(custom_headers_config={"items": [item]})


def cors(**items: list[str]) -> dict[str, Any]:
    config: dict[str, Any] = {
        "access_control_allow_credentials": False,
        "access_control_allow_headers": {"items": ["X-A"]},
        "access_control_allow_methods": {"items": ["GET"]},
        "access_control_allow_origins": {"items": ["*"]},
        "origin_override": False,
    }
    config.update({name: {"items": values} for name, values in items.items()})
    return policy(cors_config=config)


CONFIG_CASES = [
    pytest.param(
        custom("X-A", "1\r\nSet-Cookie: a=1"),
        f"{RHP}.custom_headers_config.items[0].value",
        id="custom-value-crlf",
    ),
    pytest.param(
        custom("X-A", "1\nX-B: 2"),
        f"{RHP}.custom_headers_config.items[0].value",
        id="custom-value-lf",
    ),
    pytest.param(
        custom("X-A", "1\x00"), f"{RHP}.custom_headers_config.items[0].value", id="custom-value-nul"
    ),
    pytest.param(
        custom("X-A: 1\r\nX-B", "2"),
        f"{RHP}.custom_headers_config.items[0].header",
        id="custom-name-crlf",
    ),
    pytest.param(
        custom("X A", "2"), f"{RHP}.custom_headers_config.items[0].header", id="custom-name-space"
    ),
    pytest.param(
        policy(
            security_headers_config={
                "content_security_policy": {
                    "content_security_policy": "default-src 'self'\r\nX-B: 1",
                    "override": True,
                }
            }
        ),
        f"{RHP}.security_headers_config.content_security_policy.content_security_policy",
        id="csp-crlf",
    ),
    pytest.param(
        policy(
            security_headers_config={
                "xss_protection": {
                    "protection": True,
                    "report_uri": "https://r.example/\r\nX-B: 1",
                    "override": True,
                }
            }
        ),
        f"{RHP}.security_headers_config.xss_protection.report_uri",
        id="xss-report-uri-crlf",
    ),
    pytest.param(
        cors(access_control_allow_headers=["X-A", "X-B\r\nSet-Cookie: a=1"]),
        f"{RHP}.cors_config.access_control_allow_headers.items[1]",
        id="cors-allow-headers-crlf",
    ),
    pytest.param(
        cors(access_control_expose_headers=["X B"]),
        f"{RHP}.cors_config.access_control_expose_headers.items[0]",
        id="cors-expose-headers-space",
    ),
]


def config_problems(tmp_path: Path, document: dict[str, Any]) -> dict[str, str]:
    path = tmp_path / "distribution.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return dict(caught.value.problems)


@pytest.mark.parametrize(("behavior", "key"), CONFIG_CASES)
def test_config_refuses_a_header_it_would_write(
    tmp_path: Path, behavior: dict[str, Any], key: str
) -> None:
    document = distribution(8000, **behavior)
    document["distribution"]["default_cache_behavior"].pop("forwarded_values")
    found = config_problems(tmp_path, document)
    assert key in found, found


def test_config_refuses_an_origin_custom_header_that_would_split(tmp_path: Path) -> None:
    document = distribution(8000)
    document["distribution"]["origin"][0]["custom_header"] = [
        {"name": "X-Origin-Verify", "value": "s3cret\r\nX-Injected: 1"},
        {"name": "X Bad", "value": "1"},
    ]
    found = config_problems(tmp_path, document)
    assert "distribution.origin[0].custom_header[0].value" in found, found
    assert "distribution.origin[0].custom_header[1].name" in found, found


def test_config_keeps_header_values_http_allows(tmp_path: Path) -> None:
    document = distribution(8000, **custom("X-A", "a\tb caf\u00e9"))
    document["distribution"]["default_cache_behavior"].pop("forwarded_values")
    path = tmp_path / "distribution.yaml"
    path.write_text(yaml.safe_dump(document))
    load_config(path)


# --- upstream: a viewer's Host never shapes a redirect's Location ------------------------------

BAD_HOSTS = [
    pytest.param(b"a b", id="space"),
    pytest.param(b"a\tb", id="tab"),
    pytest.param(b"evil.example/x?", id="path-and-query"),
    pytest.param(b"evil.example#", id="fragment"),
    pytest.param(b"user@evil.example", id="userinfo"),
    pytest.param(b"evil.example\\good.example", id="backslash"),
    pytest.param(b"\xe9vil.example", id="obs-text"),
    pytest.param(b"a%zz", id="bad-percent"),
    pytest.param(b"example.com:80x", id="bad-port"),
]


@pytest.mark.parametrize("host", BAD_HOSTS)
async def test_host_that_is_not_a_host_gets_400_not_a_redirect(
    host: bytes, faulty: FaultOrigin, start_edge: StartEdge
) -> None:
    """The viewer parser refuses CR, LF and NUL in a Host; what it lets through (spaces,
    tabs, obs-text, "/", "@", …) would make the Location point elsewhere or break it."""
    document = in_front_of(faulty)
    document["distribution"]["default_cache_behavior"]["viewer_protocol_policy"] = (
        "redirect-to-https"
    )
    viewer = await start_edge(document)
    data = await exchange_bytes(viewer.running.ports["http"], get("/p", host))
    answer = single_response(data)
    assert answer.status == 400
    assert answer.header("location") is None
    assert answer.header("x-cache") == EDGE_ERROR
    assert faulty.connections == 0


@pytest.mark.parametrize(
    ("host", "location"),
    [
        (b"shop.example", "https://shop.example/p?q=1"),
        (b"shop.example:8080", "https://shop.example/p?q=1"),
        (b"[::1]:8080", "https://[::1]/p?q=1"),
        (b"127.0.0.2", "https://127.0.0.2/p?q=1"),
        (b"xn--caf-dma.example", "https://xn--caf-dma.example/p?q=1"),
        (b"a%41.example", "https://a%41.example/p?q=1"),
    ],
)
async def test_host_that_is_a_host_redirects(
    host: bytes, location: str, faulty: FaultOrigin, start_edge: StartEdge
) -> None:
    document = in_front_of(faulty)
    document["distribution"]["aliases"] = ["shop.example", "*.example"]
    document["distribution"]["default_cache_behavior"]["viewer_protocol_policy"] = (
        "redirect-to-https"
    )
    viewer = await start_edge(document)
    data = await exchange_bytes(viewer.running.ports["http"], get("/p?q=1", host))
    answer = single_response(data)
    assert (answer.status, answer.header("location")) == (301, location)
