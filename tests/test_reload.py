"""Hot reload through a real edge: saving a handler file or the config file changes what the
running edge does, a broken save is answered (handler: 503) or ignored (config) until fixed,
and the edge never stops."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import RecordingOrigin, StartEdge, distribution, handler

from edgeproxy.config.loading import load_config
from edgeproxy.errors import HandlerLoadError
from edgeproxy.reload import config_source
from edgeproxy.runtime import RunningEdge, running_edge

GENERATE = (
    "CALLS = 0\n"
    "def handler(event, context):\n"
    "    global CALLS\n"
    "    CALLS += 1\n"
    "    return {{'status': 200, 'body': '{version} call ' + str(CALLS)}}\n"
)


def save(path: Path, text: str, mtime_s: int) -> None:
    """Write ``text`` with an explicit mtime: two saves inside one filesystem timestamp tick
    still look different (as they would to an editor a second later)."""
    path.write_text(text)
    os.utime(path, ns=(mtime_s * 1_000_000_000, mtime_s * 1_000_000_000))


def hooked(origin: RecordingOrigin, spec: str, isolation: str = "thread") -> dict[str, Any]:
    assoc = {"event_type": "viewer-request", "handler": spec, "isolation": isolation}
    return distribution(origin.port, lambda_function_association=[assoc])


@pytest.mark.parametrize("isolation", ["thread", "process"])
async def test_saved_handler_takes_effect_on_the_next_request(
    isolation: str, origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
) -> None:
    live = tmp_path / "live.py"
    save(live, GENERATE.format(version="v1"), 1)
    viewer = await start_edge(hooked(origin, f"{live}:handler", isolation))
    assert (await viewer.get("/a")).text == "v1 call 1"
    assert (await viewer.get("/a")).text == "v1 call 2"  # warm: globals persist
    save(live, GENERATE.format(version="v2"), 2)
    second = await viewer.get("/a")
    assert second.text == "v2 call 1"  # new code, globals reset, no restart
    assert second.headers["x-cache"] == "LambdaGeneratedResponse from cloudfront"
    assert origin.seen == []


@pytest.mark.parametrize("isolation", ["thread", "process"])
async def test_syntax_error_is_503_until_fixed(
    isolation: str,
    origin: RecordingOrigin,
    start_edge: StartEdge,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    live = tmp_path / "live.py"
    save(live, GENERATE.format(version="v1"), 1)
    viewer = await start_edge(hooked(origin, f"{live}:handler", isolation))
    assert (await viewer.get("/a")).status_code == 200
    save(live, "def handler(event, context)\n    return {}\n", 2)
    with caplog.at_level(logging.ERROR):
        for _ in range(2):
            broken = await viewer.get("/a")
            assert broken.status_code == 503
            assert broken.headers["x-cache"] == "LambdaExecutionError from cloudfront"
            assert "<H1>503 ERROR</H1>" in broken.text
    # Logged once, with the file and the line; every failed request names the error too.
    loads = [r.getMessage() for r in caplog.records if r.name == "edgeproxy.loader"]
    assert len(loads) == 1
    assert f'File "{live}", line 1' in loads[0] and "SyntaxError: expected ':'" in loads[0]
    assert "(live.py, line 1)" in caplog.text
    save(live, GENERATE.format(version="v3"), 3)
    fixed = await viewer.get("/a")
    assert (fixed.status_code, fixed.text) == (200, "v3 call 1")
    assert origin.seen == []


# --- a module's code never runs on the event loop ---------------------------------------------


def live_and_other(origin: RecordingOrigin, spec: str, **edge_handlers: Any) -> dict[str, Any]:
    """``/live/*`` runs ``spec`` on viewer-request; ``/other/…`` has no handler."""
    document = distribution(origin.port)
    base = dict(document["distribution"]["default_cache_behavior"])
    association = {"event_type": "viewer-request", "handler": spec}
    document["distribution"]["ordered_cache_behavior"] = [
        {**base, "path_pattern": "/live/*", "lambda_function_association": [association]}
    ]
    document["edge"]["handlers"] = edge_handlers
    return document


async def hits_meanwhile(viewer: Any, pending: asyncio.Task[Any]) -> list[float]:
    """Seconds each hit on ``/other/object`` took while ``pending`` ran (bounded)."""
    seconds: list[float] = []
    while not pending.done() and len(seconds) < 10_000:
        sent = time.perf_counter()
        answer = await viewer.get("/other/object")
        seconds.append(time.perf_counter() - sent)
        assert answer.headers["x-cache"] == "Hit from cloudfront"
    return seconds


async def test_a_slow_hot_reload_holds_up_no_other_viewer(
    origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
) -> None:
    """A save whose top-level code takes 2 s: the module loads on a thread; hits on another
    path are answered at once meanwhile, and the request that found the save gets the new
    code once it has loaded."""
    live = tmp_path / "live.py"
    save(live, GENERATE.format(version="v1"), 1)
    viewer = await start_edge(live_and_other(origin, f"{live}:handler"))
    assert (await viewer.get("/live/a")).text == "v1 call 1"
    assert (await viewer.get("/other/object")).status_code == 200  # cached from now on
    save(live, "import time\ntime.sleep(2)\n" + GENERATE.format(version="v2"), 2)
    started = time.perf_counter()
    reloading = asyncio.create_task(viewer.get("/live/a"))
    seconds = await hits_meanwhile(viewer, reloading)
    answer = await reloading
    assert answer.text == "v2 call 1"
    assert time.perf_counter() - started >= 2.0  # it did wait for the new code
    assert len(seconds) >= 10, seconds
    assert max(seconds) < 0.5, f"slowest hit during the reload: {max(seconds):.2f} s"


HANGS = "while True:\n    pass\n"  # top-level code that never ends


async def test_a_module_that_never_loads_is_refused_and_stopped(
    origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
) -> None:
    """A save whose top-level code never ends: after ``init_timeout`` the stage answers 503
    (the save does not load), other viewers were served meanwhile, its loading thread is
    stopped (no CPU burnt), and the next good save is served."""
    live = tmp_path / "live.py"
    save(live, GENERATE.format(version="v1"), 1)
    viewer = await start_edge(
        live_and_other(origin, f"{live}:handler", init_timeout=1, isolation="thread")
    )
    assert (await viewer.get("/live/a")).text == "v1 call 1"
    assert (await viewer.get("/other/object")).status_code == 200
    save(live, HANGS + GENERATE.format(version="v2"), 2)
    reloading = asyncio.create_task(viewer.get("/live/a"))
    seconds = await hits_meanwhile(viewer, reloading)
    refused = await reloading
    assert (refused.status_code, refused.headers["x-cache"]) == (
        503,
        "LambdaExecutionError from cloudfront",
    )
    assert max(seconds) < 0.5, f"slowest hit during the reload: {max(seconds):.2f} s"
    cpu = time.process_time()
    await asyncio.sleep(0.5)
    assert time.process_time() - cpu < 0.25  # the loading thread no longer spins
    save(live, GENERATE.format(version="v3"), 3)
    assert (await viewer.get("/live/a")).text == "v3 call 1"


async def test_a_module_that_never_loads_stops_the_start_naming_its_file(
    origin: RecordingOrigin, write_config: Callable[[dict[str, Any]], Path], tmp_path: Path
) -> None:
    hangs = tmp_path / "hangs.py"
    hangs.write_text(HANGS + "def handler(event, context):\n    return {'status': 200}\n")
    config = load_config(
        write_config(
            live_and_other(origin, f"{hangs}:handler", init_timeout=0.5, isolation="thread")
        )
    ).config
    started = time.perf_counter()
    with pytest.raises(HandlerLoadError) as info:
        async with running_edge(config, use_dns=False):
            pass
    assert time.perf_counter() - started < 5.0
    assert str(hangs) in str(info.value)
    assert "did not finish within 0.5 s" in str(info.value)


# --- the config file ---------------------------------------------------------------------------


@asynccontextmanager
async def reloading_edge(path: Path) -> AsyncIterator[RunningEdge]:
    config = load_config(path).config
    source = config_source(path, interval_s=0.02)
    async with running_edge(config, use_dns=False, reload=source) as running:
        yield running


async def eventually(check: Callable[[], Any], what: str) -> None:
    """Wait (bounded, 10 s) for the reloader's poll to have acted."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def with_new_behavior(document: dict[str, Any]) -> dict[str, Any]:
    base = dict(document["distribution"]["default_cache_behavior"])
    generate = {
        "event_type": "viewer-request",
        "handler": handler("flow_generate.py:viewer_request"),
    }
    document["distribution"]["ordered_cache_behavior"] = [
        {**base, "path_pattern": "/new/*", "lambda_function_association": [generate]}
    ]
    return document


async def test_config_edit_reloads_and_bad_edits_keep_the_running_config(
    origin: RecordingOrigin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "distribution.yaml"
    document = distribution(origin.port)
    save(path, yaml.safe_dump(document), 1)
    async with reloading_edge(path) as running, httpx.AsyncClient(timeout=10) as client:
        reloader = running.reloader
        assert reloader is not None

        async def new_behavior_served() -> bool:
            answer = await client.get(running.url("/new/x"))
            return answer.text == "generated at viewer-request"

        assert not await new_behavior_served()  # /new/x goes to the origin for now
        save(path, yaml.safe_dump(with_new_behavior(document)), 2)
        await eventually(new_behavior_served, "the new behavior is served")
        assert reloader.reloads == 1

        # A bad edit: every problem logged with its key path; the running config stays.
        bad = with_new_behavior(distribution(origin.port))
        bad["distribution"]["default_cache_behavior"]["viewer_protocol_policy"] = "sometimes"
        bad["distribution"]["no_such_key"] = 1
        with caplog.at_level(logging.ERROR, logger="edgeproxy.reload"):
            save(path, yaml.safe_dump(bad), 3)
            await eventually(lambda: _true(reloader.failures == 1), "the bad edit is noticed")
        assert "does not load (2 problem(s)); the running config stays in use" in caplog.text
        assert "distribution.default_cache_behavior.viewer_protocol_policy" in caplog.text
        assert "distribution.no_such_key" in caplog.text
        assert await new_behavior_served()

        # A handler that does not load is a bad edit too.
        missing = with_new_behavior(distribution(origin.port))
        missing["distribution"]["default_cache_behavior"]["lambda_function_association"] = [
            {"event_type": "viewer-request", "handler": "nowhere.py:handler"}
        ]
        save(path, yaml.safe_dump(missing), 4)
        await eventually(lambda: _true(reloader.failures == 2), "the missing handler is noticed")
        assert "handler file not found" in caplog.text
        assert await new_behavior_served()

        # Fixed: the next good save is served.
        save(path, yaml.safe_dump(distribution(origin.port)), 5)
        await eventually(_not(new_behavior_served), "the behavior is gone again")
        assert reloader.reloads == 2
        assert (await client.get(running.url("/new/x"))).text == "origin body for /new/x"


async def test_check_reports_what_it_did(origin: RecordingOrigin, tmp_path: Path) -> None:
    path = tmp_path / "distribution.yaml"
    document = distribution(origin.port)
    save(path, yaml.safe_dump(document), 1)
    async with reloading_edge(path) as running:
        reloader = running.reloader
        assert reloader is not None
        await reloader.stop()  # driven by hand from here on
        assert await reloader.check() is None
        save(path, "distribution: [", 2)
        assert await reloader.check() is False
        save(path, yaml.safe_dump(with_new_behavior(document)), 3)
        assert await reloader.check() is True
        assert len(running.edge.routes.routes) == 2


async def test_edge_settings_changes_say_they_need_a_restart(
    origin: RecordingOrigin, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "distribution.yaml"
    document = distribution(origin.port)
    save(path, yaml.safe_dump(document), 1)
    async with reloading_edge(path) as running:
        reloader = running.reloader
        assert reloader is not None
        await reloader.stop()
        document["edge"]["pop"] = "FRA56-P1"
        save(path, yaml.safe_dump(document), 2)
        with caplog.at_level(logging.WARNING, logger="edgeproxy.reload"):
            assert await reloader.check() is True
        assert "edge.pop changed: it takes effect after a restart" in caplog.text


async def _true(value: bool) -> bool:
    return value


def _not(check: Callable[[], Any]) -> Callable[[], Any]:
    async def negated() -> bool:
        return not await check()

    return negated


async def test_every_config_file_is_watched_a_terraform_folder_file_by_file(
    origin: RecordingOrigin, tmp_path: Path
) -> None:
    """`serve --config infra/ --config edge.yaml`: saving edge.yaml (the second file) or a
    .tf file inside the folder reloads, as saving the only file does."""
    import shutil

    from test_config_sources import TERRAFORM, TF_NAMES, edge_overlay

    folder = tmp_path / "infra"
    shutil.copytree(TERRAFORM, folder)
    edge_yaml = edge_overlay(tmp_path, origin, TF_NAMES)
    overlay = yaml.safe_load(edge_yaml.read_text())
    paths = [folder, edge_yaml]
    config = load_config(paths).config
    source = config_source(paths, interval_s=0.02)
    async with (
        running_edge(config, use_dns=False, reload=source) as running,
        httpx.AsyncClient(timeout=10) as client,
    ):
        url = f"http://127.0.0.1:{running.ports['http']}/img/a.png"

        async def status(host: str) -> int:
            return (await client.get(url, headers={"Host": host})).status_code

        assert await status("img.example.com") == 403  # not an alias yet
        overlay["distribution"] = {"aliases": ["www.example.com", "img.example.com"]}
        save(edge_yaml, yaml.safe_dump(overlay), 1)
        await eventually(lambda: _is(status("img.example.com"), 200), "edge.yaml reloaded")

        main = folder / "main.tf"
        text = main.read_text().replace('"allow-all"', '"redirect-to-https"')
        save(main, text, 2)
        await eventually(lambda: _is(status("www.example.com"), 301), "main.tf reloaded")
        assert running.reloader is not None and running.reloader.reloads == 2


async def _is(answer: Any, wanted: int) -> bool:
    return bool(await answer == wanted)
