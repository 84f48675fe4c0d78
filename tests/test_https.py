"""The HTTPS listener and the viewer protocol policies through a real edge: the certificate
verifies with the generated CA for every name (real TLS handshakes), redirect-to-https (301
for GET and HEAD, 307 for the other methods, 403 for those over HTTP/1.0, no viewer-request
run), https-only (403), and what the origin learns about the listener and the TLS session."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import RecordingOrigin, StartEdge, Viewer, distribution, handler
from test_demo import demo_copy, free_port

# A bound for failing, not a timing: workers start slowly on a loaded 2-CPU machine.
STARTUP_BOUND_S = 60

ALIASES = ["www.example.com", "example.com"]
CF_PROTO = "CloudFront-Forwarded-Proto"


def https_distribution(origin: RecordingOrigin, **behavior: Any) -> dict[str, Any]:
    behavior.setdefault(
        "forwarded_values",
        {"query_string": True, "cookies": {"forward": "none"}, "headers": [CF_PROTO]},
    )
    document = distribution(origin.port, **behavior)
    document["distribution"]["aliases"] = ALIASES
    document["edge"]["listeners"]["https_port"] = 0
    return document


def ca_file(viewer: Viewer) -> Path:
    return viewer.running.config.base_dir / ".edgeproxy" / "certs" / "ca.pem"


def https_client(viewer: Viewer) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca_file(viewer)))


async def tls_get(
    port: int, name: str, cafile: Path, *, host: str = "127.0.0.1"
) -> tuple[bytes, str | None]:
    """One GET over a real TLS connection that verifies ``name`` with ``cafile``: the status
    line and the ALPN protocol the server chose."""
    context = ssl.create_default_context(cafile=cafile)
    context.set_alpn_protocols(["h2", "http/1.1"])
    reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=name)
    try:
        alpn = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        writer.write(b"GET /tls HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % name.encode())
        return await reader.readline(), alpn
    finally:
        writer.close()


# -- the certificate --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "::1", "www.example.com"])
async def test_certificate_verifies_with_the_generated_ca(
    origin: RecordingOrigin, start_edge: StartEdge, name: str
):
    viewer = await start_edge(https_distribution(origin))
    status, alpn = await tls_get(viewer.running.ports["https"], name, ca_file(viewer))
    assert status.startswith(b"HTTP/1.1 200")
    assert alpn == "http/1.1"


async def test_certificate_verifies_over_ipv6_loopback(
    origin: RecordingOrigin, start_edge: StartEdge
):
    document = https_distribution(origin)
    document["edge"]["listeners"]["host"] = "::1"
    viewer = await start_edge(document)
    port = viewer.running.ports["https"]
    status, _ = await tls_get(port, "::1", ca_file(viewer), host="::1")
    assert status.startswith(b"HTTP/1.1 200")


async def test_a_name_the_certificate_is_not_for_fails_verification(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(https_distribution(origin))
    with pytest.raises(ssl.SSLCertVerificationError):
        await tls_get(viewer.running.ports["https"], "elsewhere.example", ca_file(viewer))


async def test_certificates_are_reused_by_the_next_start(
    origin: RecordingOrigin, start_edge: StartEdge
):
    first = await start_edge(https_distribution(origin))
    ca = ca_file(first).read_bytes()
    second = await start_edge(https_distribution(origin))
    assert ca_file(second).read_bytes() == ca
    status, _ = await tls_get(second.running.ports["https"], "localhost", ca_file(second))
    assert status.startswith(b"HTTP/1.1 200")


# -- redirect-to-https -----------------------------------------------------------------------

PASSTHROUGH = [{"event_type": "viewer-request", "handler": handler("flow_passthrough.py")}]


async def redirecting(origin: RecordingOrigin, start_edge: StartEdge) -> Viewer:
    return await start_edge(
        https_distribution(
            origin,
            viewer_protocol_policy="redirect-to-https",
            lambda_function_association=PASSTHROUGH,
        )
    )


@pytest.mark.parametrize(
    ("method", "status"),
    [("GET", 301), ("HEAD", 301), ("POST", 307), ("PUT", 307), ("DELETE", 307)],
)
async def test_redirect_to_https(
    origin: RecordingOrigin, start_edge: StartEdge, method: str, status: int
):
    viewer = await redirecting(origin, start_edge)
    https_port = viewer.running.ports["https"]
    response = await viewer.request(method, "/account/?tab=2", headers={"Host": "example.com"})
    assert response.status_code == status
    assert response.headers["location"] == f"https://example.com:{https_port}/account/?tab=2"
    assert response.headers["x-cache"] == "Redirect from cloudfront"
    assert response.headers["server"] == "CloudFront"
    assert await viewer.last_stages() == []  # viewer-request does not run for it
    assert origin.seen == []
    if method == "GET":
        assert response.text.startswith("<html>\r\n<head><title>301 Moved Permanently</title>")


async def test_http10_viewers_get_403_instead_of_307(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await redirecting(origin, start_edge)
    reader, writer = await asyncio.open_connection("127.0.0.1", viewer.running.ports["http"])
    writer.write(b"POST /form HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"X-Cache: Error from cloudfront\r\n" in answer
    assert b"Location:" not in answer
    assert origin.seen == []


async def test_following_the_redirect_reaches_the_origin_over_https(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await redirecting(origin, start_edge)
    async with https_client(viewer) as client:
        url = viewer.running.url("/account/", "http").replace("127.0.0.1", "localhost")
        response = await client.get(url, follow_redirects=True)
    assert response.status_code == 200
    assert str(response.url).startswith("https://localhost:")
    assert [r.status_code for r in response.history] == [301]
    assert await viewer.last_stages() == ["viewer-request"]
    seen = origin.requests_for("/account/")[0]
    assert seen.headers[CF_PROTO] == "https"
    assert seen.headers["X-Forwarded-For"] == "127.0.0.1"
    assert seen.headers["Via"].endswith(".cloudfront.net (CloudFront)")


# -- https-only and allow-all ----------------------------------------------------------------


async def test_https_only_refuses_http_and_serves_https(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(https_distribution(origin, viewer_protocol_policy="https-only"))
    refused = await viewer.get("/page")
    assert refused.status_code == 403
    assert refused.headers["x-cache"] == "Error from cloudfront"
    async with https_client(viewer) as client:
        served = await client.get(viewer.running.url("/page", "https"))
    assert served.status_code == 200
    assert len(origin.requests_for("/page")) == 1


async def test_forwarded_proto_reflects_the_listener(
    origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(https_distribution(origin))
    plain = await viewer.get("/p")
    async with https_client(viewer) as client:
        secure = await client.get(viewer.running.url("/p", "https"))
    assert plain.headers["x-cache"] == secure.headers["x-cache"] == "Miss from cloudfront"
    assert [r.headers[CF_PROTO] for r in origin.requests_for("/p")] == ["http", "https"]


async def test_tls_and_address_headers_reach_the_origin_when_the_policy_names_them(
    origin: RecordingOrigin, start_edge: StartEdge
):
    names = [CF_PROTO, "CloudFront-Viewer-TLS", "CloudFront-Viewer-Address"]
    names.append("CloudFront-Viewer-Http-Version")
    policy = {
        "name": "viewer-facts",
        "headers_config": {"header_behavior": "whitelist", "headers": {"items": names}},
        "cookies_config": {"cookie_behavior": "none"},
        "query_strings_config": {"query_string_behavior": "none"},
    }
    document = https_distribution(
        origin, cache_policy_id="CachingDisabled", origin_request_policy=policy
    )
    document["distribution"]["default_cache_behavior"].pop("forwarded_values")
    viewer = await start_edge(document)
    async with https_client(viewer) as client:
        for _ in range(2):  # one connection: the second request reuses it
            await client.get(viewer.running.url("/tls", "https"))
    await viewer.get("/tls")
    first, second, plain = origin.requests_for("/tls")
    tls = r"TLSv1\.[23]:[A-Z0-9_-]+:"
    assert re.fullmatch(tls + "fullHandshake", first.headers["CloudFront-Viewer-TLS"])
    assert re.fullmatch(tls + "connectionReused", second.headers["CloudFront-Viewer-TLS"])
    assert "CloudFront-Viewer-TLS" not in plain.headers  # HTTPS viewers only
    assert re.fullmatch(r"127\.0\.0\.1:\d+", first.headers["CloudFront-Viewer-Address"])
    assert first.headers["CloudFront-Viewer-Http-Version"] == "1.1"
    assert first.headers[CF_PROTO] == "https" and plain.headers[CF_PROTO] == "http"


# -- the CLI ---------------------------------------------------------------------------------


def test_serve_https_port_opens_an_https_listener(tmp_path: Path):
    """`edgeproxy serve --https-port N` in a real process, stopped by PID."""
    config = demo_copy(tmp_path)
    document = yaml.safe_load(config.read_text())
    document["edge"]["listeners"].pop("https_port", None)
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    port = free_port()
    command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--config", str(config)]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--https-port", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        ca = config.parent / ".edgeproxy" / "certs" / "ca.pem"
        response = _get_when_up(f"https://localhost:{port}/", ca, process)
    finally:
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=10)
    assert response.status_code == 200
    assert response.headers["x-cache"] == "Miss from cloudfront"
    assert f"https://127.0.0.1:{port}/ (CA: {ca})" in log.read_text()


def _get_when_up(url: str, ca: Path, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_BOUND_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "edgeproxy serve exited early"
        try:
            return httpx.get(url, verify=ssl.create_default_context(cafile=ca))
        except (httpx.TransportError, OSError):
            time.sleep(0.1)
    raise AssertionError(f"edgeproxy serve did not come up in {STARTUP_BOUND_S} s")
