"""A real browser on the demo: headless Chromium (Debian's, driven by Playwright) opens
http://localhost:<port>/account/, follows the edge's redirect-to-https to the HTTPS listener
and shows the demo page with its security headers.

Chromium is told to accept the edge's certificate by its public key
(--ignore-certificate-errors-spki-list); that the certificate verifies with the generated CA
for every name is proven by real handshakes in test_https.py. `make test` installs chromium
and chromium-driver when they are missing; without them this test fails, it never skips.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from playwright.async_api import BrowserContext, async_playwright
from test_demo import demo_copy

from edgeproxy.config.loading import load_config
from edgeproxy.runtime import RunningEdge, running_edge

CHROMIUM = Path("/usr/bin/chromium")
# What a headless Chromium needs on a machine with no network but loopback.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
async def demo_with_https(tmp_path: Path) -> AsyncIterator[RunningEdge]:
    path = demo_copy(tmp_path)
    document = yaml.safe_load(path.read_text())
    document["edge"]["listeners"]["https_port"] = 0  # a free port; redirects name it
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    async with running_edge(load_config(path).config, use_dns=False) as running:
        yield running


def spki_hash(certificate: Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo)): how Chromium names a key it should accept."""
    cert = x509.load_pem_x509_certificate(certificate.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@asynccontextmanager
async def chromium(profile: Path, leaf: Path) -> AsyncIterator[BrowserContext]:
    assert CHROMIUM.is_file(), "Debian's chromium is missing: `make test` installs it"
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile),  # a fresh user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={spki_hash(leaf)}"],
        )
        try:
            yield context
        finally:
            await context.close()


async def test_browser_follows_the_redirect_to_the_https_demo_page(
    demo_with_https: RunningEdge, tmp_path: Path
):
    running = demo_with_https
    certs = running.config.base_dir / ".edgeproxy" / "certs"
    start = f"http://localhost:{running.ports['http']}/account/"
    async with chromium(tmp_path / "profile", certs / "leaf.pem") as context:
        page = await context.new_page()
        response = await page.goto(start)
        assert response is not None
        assert page.url == f"https://localhost:{running.ports['https']}/account/"
        assert response.status == 200
        assert await page.title() == "Your account - edgeproxy demo"
        assert await page.locator("h1").inner_text() == "Your account"

        headers = await response.all_headers()
        assert headers["strict-transport-security"].startswith("max-age=63072000")
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-cache"] in ("Miss from cloudfront", "Hit from cloudfront")

        redirect = response.request.redirected_from
        assert redirect is not None and redirect.url == start
        first = await redirect.response()
        assert first is not None and first.status == 301
        assert (await first.all_headers())["x-cache"] == "Redirect from cloudfront"

        security = await response.security_details()
        assert security is not None
        assert security.get("subjectName") == "localhost"
        assert str(security.get("issuer", "")).startswith("edgeproxy local CA")
