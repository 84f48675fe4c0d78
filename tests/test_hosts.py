"""The Host names the edge serves, through a real edge: CloudFront answers 403 to a Host that is
not the distribution's domain name nor one of its aliases (an alternate domain name missing
from the distribution); here localhost and loopback addresses are served too. The refused
request never reaches the origin, the cache or a redirect's Location."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import RecordingOrigin, StartEdge, distribution
from test_reload import eventually, reloading_edge, save

from edgeproxy.messages import EdgeRequest
from edgeproxy.viewer.request_checks import ServedHosts

DOMAIN = "d111111abcdef8.cloudfront.net"  # edge.distribution_domain_name's default
REFUSED_PAGE = (
    "<H1>403 ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n"
    '<HR noshade size="1px">\nBad request.\n'
    "We can't connect to the server for this app or website at this time."
)


def aliased(origin: RecordingOrigin, **behavior: Any) -> dict[str, Any]:
    document = distribution(origin.port, **behavior)
    document["distribution"]["aliases"] = ["www.example.com", "*.shop.example"]
    return document


async def raw_get(port: int, head: bytes) -> bytes:
    """``head`` sent as it is (any Host, or none); everything the edge answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


@pytest.mark.parametrize("host", ["localhost:80x", "[::1", "a b", "evil.example/x"])
async def test_a_host_that_is_not_a_host_gets_400_and_reaches_nothing(
    host: str, origin: RecordingOrigin, start_edge: StartEdge
):
    """RFC 9112 3.2: a Host that is not ``uri-host [":" port]`` is a bad request."""
    viewer = await start_edge(aliased(origin))
    response = await viewer.get("/page", headers={"Host": host})
    assert response.status_code == 400
    assert response.headers["x-cache"] == "Error from cloudfront"
    assert origin.seen == []


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8080",
        "www.example.com.evil.example",
        "shop.example",  # *.shop.example names the names under it, not itself
        "d222222abcdef8.cloudfront.net",
        "192.0.2.1",
        "[2001:db8::1]:80",
    ],
)
async def test_an_unknown_host_gets_403_and_reaches_nothing(
    host: str, origin: RecordingOrigin, start_edge: StartEdge, caplog: pytest.LogCaptureFixture
):
    viewer = await start_edge(aliased(origin))
    with caplog.at_level(logging.WARNING, logger="edgeproxy.error"):
        for _ in range(2):  # the second is not a hit either
            response = await viewer.get("/page", headers={"Host": host})
            assert response.status_code == 403
            assert response.headers["x-cache"] == "Error from cloudfront"
            assert response.headers["server"] == "CloudFront"
            assert REFUSED_PAGE in response.text
    assert origin.seen == []
    assert viewer.running.edge.cache.stats.entries == 0
    logged = [r.getMessage() for r in caplog.records if "UnknownHost" in r.getMessage()]
    assert len(logged) == 2
    for name in (DOMAIN, "www.example.com", "*.shop.example", "localhost", "distribution.aliases"):
        assert name in logged[0]


@pytest.mark.parametrize(
    "host",
    [
        "www.example.com",
        "WWW.Example.COM:8080",
        "www.example.com.",
        "a.shop.example",
        "b.a.shop.example:443",
        DOMAIN,
        "localhost",
        "localhost:{port}",
        "127.0.0.1:{port}",
        "127.0.0.7",
        "[::1]:{port}",
        "[::1]",
        "::1",  # unbracketed, as some clients write it: still unambiguous
    ],
)
async def test_the_distributions_names_and_loopback_are_served(
    host: str, origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(aliased(origin))
    host = host.format(port=viewer.running.ports["http"])
    miss = await viewer.get("/page", headers={"Host": host})
    hit = await viewer.get("/page", headers={"Host": host})
    assert (miss.status_code, miss.text) == (200, "origin body for /page")
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert len(origin.seen) == 1


async def test_a_request_without_host_is_served(origin: RecordingOrigin, start_edge: StartEdge):
    # HTTP/1.0 may omit Host: the viewer reached this edge by its address and named nothing else
    viewer = await start_edge(aliased(origin))
    answer = await raw_get(viewer.running.ports["http"], b"GET /page HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_redirect_to_https_never_names_a_foreign_host(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = aliased(origin, viewer_protocol_policy="redirect-to-https")
    document["edge"]["listeners"]["https_port"] = 0
    viewer = await start_edge(document)
    https_port = viewer.running.ports["https"]
    refused = await viewer.get("/account/", headers={"Host": "evil.example"})
    assert refused.status_code == 403
    assert "location" not in refused.headers
    served = await viewer.get("/account/", headers={"Host": "www.example.com"})
    assert served.status_code == 301
    assert served.headers["location"] == f"https://www.example.com:{https_port}/account/"
    assert origin.seen == []


async def test_the_quick_hit_path_refuses_a_host_the_full_flow_refuses(
    origin: RecordingOrigin, start_edge: StartEdge
):
    # An object cached under a Host, then that Host no longer served (an alias removed by a
    # config reload): the hit path must refuse it exactly as the full flow does.
    viewer = await start_edge(aliased(origin))
    edge = viewer.running.edge
    request = EdgeRequest("GET", "/page", "", [("Host", "www.example.com")], "127.0.0.1")
    assert (await edge.handle(request)).status == 200
    assert edge.hit(request) is not None
    edge.hosts = ServedHosts([DOMAIN])  # what a reload without the alias sets
    assert edge.hit(request) is None
    refused = await edge.handle(request)
    assert refused.status == 403
    assert len(origin.seen) == 1


async def test_a_config_reload_changes_the_names_served(origin: RecordingOrigin, tmp_path: Path):
    path = tmp_path / "distribution.yaml"
    document = aliased(origin)
    save(path, yaml.safe_dump(document), 1)
    async with reloading_edge(path) as running, httpx.AsyncClient(timeout=10) as client:

        async def status(host: str) -> int:
            return (await client.get(running.url("/page"), headers={"Host": host})).status_code

        assert await status("www.example.com") == 200
        assert await status("new.example") == 403
        document["distribution"]["aliases"] = ["new.example"]
        save(path, yaml.safe_dump(document), 2)

        async def swapped() -> bool:
            return await status("new.example") == 200

        await eventually(swapped, "the new alias is served")
        assert await status("www.example.com") == 403  # cached under it, yet refused
