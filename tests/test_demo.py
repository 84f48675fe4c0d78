"""The shipped demo: config/distribution.yaml in front of the built-in demo origin, as
`make run` serves it (in-process here, and once through the real CLI)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml

from edgeproxy.config.loading import load_config
from edgeproxy.origin.demo import REQUESTS
from edgeproxy.runtime import RunningEdge, running_edge

# A bound for failing, not a timing: workers start slowly on a loaded 2-CPU machine.
STARTUP_BOUND_S = 60

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_copy(tmp_path: Path) -> Path:
    """The demo config folder, copied, with free ports so tests never clash."""
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    path = folder / "distribution.yaml"
    document = yaml.safe_load(path.read_text())
    edge = document["edge"]
    edge["listeners"]["http_port"] = free_port()
    if "https_port" in edge["listeners"]:
        edge["listeners"]["https_port"] = free_port()
    edge["admin"]["port"] = free_port()
    edge["demo_origin"]["port"] = free_port()
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[RunningEdge]:
    config = load_config(demo_copy(tmp_path)).config
    async with running_edge(config, use_dns=False) as running:
        yield running


async def test_demo_page_miss_then_hit(demo: RunningEdge):
    async with httpx.AsyncClient() as client:
        miss = await client.get(demo.url("/"))
        hit = await client.get(demo.url("/"))
    assert miss.status_code == 200
    assert "edgeproxy" in miss.text
    assert miss.headers["x-cache"] == "Miss from cloudfront"
    assert hit.headers["x-cache"] == "Hit from cloudfront"
    assert "age" in hit.headers
    assert hit.text == miss.text
    assert demo.demo_origin is not None
    assert sum(demo.demo_origin[REQUESTS].values()) == 1
    # the header examples on "/": origin-response and viewer-response handlers
    assert hit.headers["x-processed-by"] == "edgeproxy"
    assert hit.headers["strict-transport-security"].startswith("max-age=")
    assert hit.headers["x-frame-options"] == "DENY"


async def test_demo_www_redirect(demo: RunningEdge):
    async with httpx.AsyncClient() as client:
        response = await client.get(demo.url("/www/"), headers={"Host": "example.com"})
    assert response.status_code == 301
    assert response.headers["location"] == "https://www.example.com/www/"
    assert response.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"


async def test_demo_country_block(demo: RunningEdge):
    async with httpx.AsyncClient() as client:
        blocked = await client.get(
            demo.url("/members/"), headers={"CloudFront-Viewer-Country": "DE"}
        )
        allowed = await client.get(demo.url("/members/"))
    assert blocked.status_code == 403
    assert allowed.status_code == 200


async def test_demo_https_redirect_is_cached_for_http_viewers(demo: RunningEdge):
    async with httpx.AsyncClient() as client:
        first = await client.get(demo.url("/secure/"))
        second = await client.get(demo.url("/secure/"))
    assert first.status_code == 301
    assert first.headers["location"].startswith("https://")
    assert first.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert second.status_code == 301
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert demo.demo_origin is not None
    assert demo.demo_origin[REQUESTS]["/secure/"] == 0


ODD_PATHS = [
    pytest.param("/%00", 404, id="nul"),
    pytest.param("/index.html%00.txt", 404, id="nul-in-a-name"),
    pytest.param("/members/%00/", 404, id="nul-as-a-folder"),
    pytest.param("/" + "a" * 5000, 404, id="5000-char-segment"),
    pytest.param("/" + "/".join(["b" * 250] * 20), 404, id="path-over-path-max"),
    pytest.param("/?q=%00", 200, id="nul-in-query"),
    pytest.param("/?" + "q" * 5000 + "=%00", 200, id="long-query-with-nul"),
]


@pytest.mark.parametrize(("path", "status"), ODD_PATHS)
async def test_demo_origin_answers_paths_no_file_can_have(
    path: str, status: int, demo: RunningEdge, caplog: pytest.LogCaptureFixture
):
    # A NUL byte or a name too long for the file system names no file: 404, never a 500
    # with a traceback in the log, whether asked directly or through the edge.
    origin = f"http://127.0.0.1:{demo.ports['origin']}"
    async with httpx.AsyncClient() as client:
        direct = await client.get(origin + path)
        through_edge = await client.get(demo.url(path))
    assert direct.status_code == status
    assert through_edge.status_code == status
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_serve_command_runs_the_demo(tmp_path: Path):
    """`edgeproxy serve` as `make run` starts it: real process, real ports, stopped by PID."""
    config = demo_copy(tmp_path)
    port = yaml.safe_load(config.read_text())["edge"]["listeners"]["http_port"]
    command = [sys.executable, "-m", "edgeproxy.cli", "serve", "--config", str(config)]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        first = _get_when_up(f"http://127.0.0.1:{port}/", process)
        second = httpx.get(f"http://127.0.0.1:{port}/")
    finally:
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=10)
    assert first.headers["x-cache"] == "Miss from cloudfront"
    assert second.headers["x-cache"] == "Hit from cloudfront"
    assert "age" in second.headers
    assert log.read_text().count("origin GET /") == 1


def _get_when_up(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + STARTUP_BOUND_S
    while time.monotonic() < deadline:
        assert process.poll() is None, "edgeproxy serve exited early"
        try:
            return httpx.get(url)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"edgeproxy serve did not come up in {STARTUP_BOUND_S} s")
