"""The admin API's guard: loopback by default, a token required anywhere else (config), and
with a token every call checked; plus its answers to bad input and the CLI's token."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiohttp import web
from conftest import RecordingOrigin, StartEdge, WriteConfig, distribution
from fault_origin import refused_port

from edgeproxy import cli
from edgeproxy.admin import api as admin
from edgeproxy.admin.api import admin_app
from edgeproxy.config.edge_settings import is_loopback_host
from edgeproxy.config.loading import load_config
from edgeproxy.errors import ConfigError
from edgeproxy.pipeline import Edge

TOKEN = "s3cret-Token_42"


@asynccontextmanager
async def serving(edge: Edge, token: str | None) -> AsyncIterator[str]:
    """The admin API of ``edge`` on a random loopback port; yields its URL."""
    runner = web.AppRunner(admin_app(edge, token), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


CALLS: list[tuple[str, str, Any]] = [
    ("POST", "/invalidations", {"paths": ["/*"]}),
    ("GET", "/stats", None),
    ("GET", "/exchanges", None),
    ("GET", "/cache", None),
    ("GET", "/invalidations", None),
    ("GET", "/invalidations/I0000000000001", None),
    ("GET", "/metrics", None),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- config: where the admin API may listen -------------------------------------------------------


def admin_config(write_config: WriteConfig, **admin_settings: Any) -> None:
    document = distribution(8080)
    document["edge"]["admin"] = {"port": 0, **admin_settings}
    load_config(write_config(document))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "admin.example.com"])
def test_admin_off_loopback_needs_a_token(host: str, write_config: WriteConfig):
    with pytest.raises(ConfigError) as info:
        admin_config(write_config, host=host)
    [(path, message)] = info.value.problems
    assert path == "edge.admin.token"
    assert "not loopback" in message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_admin_on_loopback_needs_no_token(host: str, write_config: WriteConfig):
    admin_config(write_config, host=host)


def test_admin_off_loopback_with_a_token_is_accepted(write_config: WriteConfig):
    admin_config(write_config, host="0.0.0.0", token=TOKEN)


@pytest.mark.parametrize("token", ["", "two words", "tab\there", "naïve"])
def test_a_token_a_header_cannot_carry_is_refused(token: str, write_config: WriteConfig):
    with pytest.raises(ConfigError) as info:
        admin_config(write_config, token=token)
    assert [path for path, _ in info.value.problems] == ["edge.admin.token"]


def test_loopback_hosts():
    assert is_loopback_host("LOCALHOST") and is_loopback_host("[::1]")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("10.0.0.1")


# -- the token on every call ----------------------------------------------------------------------


@pytest.fixture
async def cached(origin: RecordingOrigin, start_edge: StartEdge) -> Any:
    """A real edge holding /a in its cache."""
    viewer = await start_edge(distribution(origin.port))
    assert (await viewer.get("/a")).status_code == 200
    return viewer


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), bearer(TOKEN + "x"), {"Authorization": TOKEN}, bearer(TOKEN.upper())],
    ids=["none", "wrong", "longer", "no-scheme", "other-case"],
)
async def test_every_call_without_the_token_is_401(headers: dict[str, str], cached: Any):
    async with serving(cached.running.edge, TOKEN) as url, httpx.AsyncClient() as client:
        for method, path, body in CALLS:
            answer = await client.request(method, url + path, json=body, headers=headers)
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "admin token" in answer.json()["error"]
    assert len(cached.running.edge.cache.entries()) == 1  # nothing was invalidated
    assert (await cached.get("/a")).headers["x-cache"] == "Hit from cloudfront"


async def test_the_token_opens_every_call(cached: Any):
    async with serving(cached.running.edge, TOKEN) as url, httpx.AsyncClient() as client:
        for method, path, body in CALLS:
            answer = await client.request(method, url + path, json=body, headers=bearer(TOKEN))
            assert answer.status_code in (200, 201), (path, answer.text)
    assert cached.running.edge.cache.entries() == []
    assert (await cached.get("/a")).headers["x-cache"] == "Miss from cloudfront"


async def test_without_a_token_the_loopback_api_is_open(cached: Any):
    async with serving(cached.running.edge, None) as url, httpx.AsyncClient() as client:
        assert (await client.get(url + "/stats")).status_code == 200


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "content", "error"),
    [
        ("POST", "/invalidations", b"{not json", "must be JSON"),
        ("POST", "/invalidations", b"\xff\xfe", "must be JSON"),
        ("POST", "/invalidations", b"[1, 2]", "non-empty list"),
        ("POST", "/invalidations", b'{"paths": ["/a*b"]}', "last character"),
        ("GET", "/exchanges?limit=abc", b"", "whole number"),
        ("GET", "/exchanges?limit=-1", b"", "whole number"),
    ],
)
async def test_bad_input_is_400_with_a_reason(
    method: str, path: str, content: bytes, error: str, cached: Any
):
    async with serving(cached.running.edge, None) as url, httpx.AsyncClient() as client:
        json_type = {"Content-Type": "application/json"}  # else 415 (test_admin_guard.py)
        answer = await client.request(method, url + path, content=content, headers=json_type)
    assert answer.status_code == 400
    assert error in answer.json()["error"]


async def test_more_than_3000_paths_is_400(cached: Any):
    paths = [f"/p{i}" for i in range(3001)]
    async with serving(cached.running.edge, None) as url, httpx.AsyncClient() as client:
        answer = await client.post(url + "/invalidations", json={"paths": paths})
    assert answer.status_code == 400
    assert "3,000" in answer.json()["error"]


async def test_the_invalidation_history_is_bounded(cached: Any, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(admin, "KEPT_INVALIDATIONS", 3)
    async with serving(cached.running.edge, None) as url, httpx.AsyncClient() as client:
        made = [
            (await client.post(url + "/invalidations", json={"paths": [f"/x{i}"]})).json()["id"]
            for i in range(5)
        ]
        listed = [entry["id"] for entry in (await client.get(url + "/invalidations")).json()]
        assert (await client.get(f"{url}/invalidations/{made[0]}")).status_code == 404
    assert listed == made[2:]
    assert len(set(made)) == 5


# -- the CLI sends the token ---------------------------------------------------------------------


async def invalidate(*argv: str) -> int:
    return await asyncio.to_thread(cli.main, ["--log-level", "ERROR", "invalidate", *argv])


async def test_cli_sends_the_token_from_its_flag(cached: Any, capsys: pytest.CaptureFixture[str]):
    async with serving(cached.running.edge, TOKEN) as url:
        assert await invalidate("/a", "--admin", url, "--token", "wrong") == 1
        assert "401" in capsys.readouterr().err
        assert len(cached.running.edge.cache.entries()) == 1
        assert await invalidate("/a", "--admin", url, "--token", TOKEN) == 0
    assert '"removed": 1' in capsys.readouterr().out
    assert cached.running.edge.cache.entries() == []


async def test_cli_reads_the_token_from_the_environment(
    cached: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    async with serving(cached.running.edge, TOKEN) as url:
        assert await invalidate("/a", "--admin", url) == 1
        monkeypatch.setenv("EDGEPROXY_ADMIN_TOKEN", TOKEN)
        assert await invalidate("/a", "--admin", url) == 0
    assert cached.running.edge.cache.entries() == []


async def test_cli_reports_an_unreachable_admin_api(capsys: pytest.CaptureFixture[str]):
    assert await invalidate("/a", "--admin", f"http://127.0.0.1:{refused_port()}") == 1
    assert "cannot reach the admin API" in capsys.readouterr().err
