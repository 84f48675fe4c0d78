"""Lambda's container model through a real edge: each function runs in a runtime process of
its own, in its folder, with its own modules, Lambda's environment and memory limit, replaced
when a file of its folder changes or a call gets stuck."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import HANDLERS, RecordingOrigin, StartEdge, distribution, handler

CONTAINER = HANDLERS / "container"


def hooked(origin: RecordingOrigin, spec: str, **assoc: Any) -> dict[str, Any]:
    association = {"event_type": "viewer-request", "handler": spec, **assoc}
    return distribution(origin.port, lambda_function_association=[association])


def two_functions(origin: RecordingOrigin) -> dict[str, Any]:
    document = hooked(origin, handler("same_name_a/uses_utils.py"))
    b_behavior = dict(document["distribution"]["default_cache_behavior"])
    b_behavior["path_pattern"] = "/b*"
    b_behavior["lambda_function_association"] = [
        {"event_type": "viewer-request", "handler": handler("same_name_b/uses_utils.py")}
    ]
    document["distribution"]["ordered_cache_behavior"] = [b_behavior]
    return document


async def test_each_function_imports_its_own_helper(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    viewer = await start_edge(two_functions(origin))
    for _ in range(2):
        assert (await viewer.get("/a")).text == "a"
        assert (await viewer.get("/b")).text == "b"


async def test_a_function_sees_lambdas_environment_and_its_folder(
    origin: RecordingOrigin, start_edge: StartEdge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_DEVELOPER_SECRET", "from the edge's shell")
    viewer = await start_edge(hooked(origin, f"{CONTAINER / 'environment.py'}:handler"))
    response = await viewer.get("/env")
    assert response.status_code == 200, response.text
    seen = json.loads(response.text)
    environ = seen["environ"]
    assert "EDGE_DEVELOPER_SECRET" not in environ
    assert environ["AWS_REGION"] == "us-east-1"
    assert environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "us-east-1.environment"
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "1"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert environ["AWS_EXECUTION_ENV"].startswith("AWS_Lambda_python3.")
    assert environ["LAMBDA_TASK_ROOT"] == str(CONTAINER)
    assert environ["TZ"] == ":UTC"
    assert {"LANG", "PATH", "LAMBDA_RUNTIME_DIR", "_HANDLER"} <= set(environ)
    assert seen["cwd"] == str(CONTAINER)
    assert seen["config"] == {"greeting": "packaged beside the handler"}
    assert seen["helper"] == "v1"


async def test_an_edited_helper_is_picked_up_on_the_next_request(
    origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path
) -> None:
    folder = tmp_path / "function"
    shutil.copytree(CONTAINER, folder)
    viewer = await start_edge(hooked(origin, f"{folder / 'environment.py'}:handler"))
    assert json.loads((await viewer.get("/v")).text)["helper"] == "v1"
    (folder / "helper.py").write_text('VERSION = "v2"\n')
    os.utime(folder / "helper.py", ns=(2_000_000_000, 2_000_000_000))
    assert json.loads((await viewer.get("/v")).text)["helper"] == "v2"


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_a_function_over_its_memory_gets_lambdas_out_of_memory_503(
    origin: RecordingOrigin, start_edge: StartEdge, caplog: pytest.LogCaptureFixture
) -> None:
    viewer = await start_edge(hooked(origin, f"{CONTAINER / 'hog.py'}:handler"))
    before = rss_mb()
    for _ in range(2):  # the runtime is replaced: the second call fails the same way
        response = await viewer.get("/hog")
        assert response.status_code == 503
        assert response.headers["x-cache"] == "LambdaExecutionError from cloudfront"
    assert "Runtime.OutOfMemory" in caplog.text
    assert rss_mb() - before < 100  # the 300 MB never lived in the edge
    assert origin.seen == []


async def test_print_and_logging_reach_the_edges_log_as_cloudwatch_shows_them(
    origin: RecordingOrigin, start_edge: StartEdge, capfd: pytest.CaptureFixture[str]
) -> None:
    """Lambda's Python runtime: ``print`` lines as they are; ``logging`` through the handler it
    puts on the root logger, ``[LEVEL]\\t<UTC time>Z\\t<request id>\\t<message>`` (awslambdaric's
    bootstrap, LambdaLoggerHandler)."""
    viewer = await start_edge(hooked(origin, f"{CONTAINER / 'logs.py'}:handler"))
    assert (await viewer.get("/logged")).status_code == 200
    err = capfd.readouterr().err
    assert "printed for /logged" in err.splitlines()
    assert "not shown" not in err
    line = next(line for line in err.splitlines() if "warned about /logged" in line)
    level, stamp, request_id, message = line.split("\t")
    assert level == "[WARNING]" and stamp.endswith("Z") and "T" in stamp
    assert len(request_id) == 36 and message == "warned about /logged"
