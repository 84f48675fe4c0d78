"""HTTPS origins signed by a private CA (a staging origin): ``edge.origins.<origin_id>``
trusts its CA file, or skips the check with ``verify: false``; without either the edge
refuses the origin's certificate as CloudFront does (502: DG http-502-self-signed-cert,
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/http-502-self-signed-cert.html)."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from conftest import RecordingOrigin, StartEdge, WriteConfig, distribution

from edgeproxy.config.loading import load_config
from edgeproxy.errors import ConfigError
from edgeproxy.routes import Routes


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def https_origin(ca: trustme.CA) -> AsyncIterator[RecordingOrigin]:
    """A recording origin on HTTPS, its certificate for localhost signed by ``ca``."""
    recording = RecordingOrigin()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recording.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    recording.port = runner.addresses[0][1]
    try:
        yield recording
    finally:
        await runner.cleanup()


def https_document(origin: RecordingOrigin, trust: dict[str, Any] | None) -> dict[str, Any]:
    document = distribution(origin.port)
    target = document["distribution"]["origin"][0]
    target["domain_name"] = "localhost"
    target["custom_origin_config"] |= {
        "https_port": origin.port,
        "origin_protocol_policy": "https-only",
    }
    document["edge"]["resolve"] = {"localhost": "127.0.0.1"}
    if trust is not None:
        document["edge"]["origins"] = {"test": trust}
    return document


async def test_the_origins_ca_file_is_trusted(
    https_origin: RecordingOrigin, start_edge: StartEdge, ca: trustme.CA, tmp_path: Path
):
    ca.cert_pem.write_to_path(str(tmp_path / "staging-ca.pem"))
    viewer = await start_edge(https_document(https_origin, {"ca_file": "staging-ca.pem"}))
    response = await viewer.get("/a")
    assert response.status_code == 200 and response.text == "origin body for /a"
    assert len(https_origin.requests_for("/a")) == 1


async def test_without_its_ca_the_origin_is_refused(
    https_origin: RecordingOrigin, start_edge: StartEdge
):
    viewer = await start_edge(https_document(https_origin, None))
    response = await viewer.get("/a")
    assert response.status_code == 502
    assert https_origin.seen == []


async def test_verify_false_accepts_any_certificate_with_a_warning(
    https_origin: RecordingOrigin, start_edge: StartEdge, caplog: pytest.LogCaptureFixture
):
    with caplog.at_level(logging.WARNING, "edgeproxy.config"):
        viewer = await start_edge(https_document(https_origin, {"verify": False}))
    assert "edge.origins.test.verify is false" in caplog.text
    response = await viewer.get("/a")
    assert response.status_code == 200
    assert len(https_origin.requests_for("/a")) == 1


@pytest.mark.parametrize(
    ("trust", "where"),
    [
        ({"ca_file": "missing.pem"}, "edge.origins.test.ca_file"),
        ({"ca_file": "x.pem", "verify": False}, "edge.origins.test"),
    ],
)
def test_bad_trust_names_its_key(write_config: WriteConfig, trust: dict[str, Any], where: str):
    document = https_document(RecordingOrigin(port=8443), trust)
    with pytest.raises(ConfigError) as raised:
        Routes(load_config(write_config(document)).config)
    assert [path for path, _ in raised.value.problems] == [where]


def test_an_unknown_origin_id_is_refused(write_config: WriteConfig):
    document = https_document(RecordingOrigin(port=8443), None)
    document["edge"]["origins"] = {"nope": {"verify": False}}
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(document))
    assert raised.value.problems[0][0].startswith("edge.origins")
