"""Lambda's handler strings through a real edge: ``handler: index.handler`` with the function's
folder in ``code`` (on an association or an ``edge.functions`` entry) finds its file the way
Lambda's runtimes do, and runs exactly like a file spec, in its container.

Lambda's form, "module.function" resolved in the function's folder (LAMBDA_TASK_ROOT):
https://docs.aws.amazon.com/lambda/latest/dg/python-handler.html#python-handler-naming and
https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html#nodejs-handler-naming
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import HANDLERS, RecordingOrigin, StartEdge, distribution

from edgeproxy.config.loading import load_config
from edgeproxy.errors import ConfigError

FUNCTIONS = HANDLERS / "lambda_form"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:router:4"
P_HOOK = "distribution.default_cache_behavior.lambda_function_association[0]"
REPO = Path(__file__).resolve().parent.parent


def hooked(origin: RecordingOrigin, **association: Any) -> dict[str, Any]:
    return distribution(
        origin.port,
        lambda_function_association=[{"event_type": "viewer-request", **association}],
    )


def seen(origin: RecordingOrigin, path: str) -> Mapping[str, str]:
    return origin.requests_for(path)[0].headers  # case-insensitive, as HTTP names are


async def test_a_python_folder_with_index_py_answers(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    folder = FUNCTIONS / "python_fn"
    viewer = await start_edge(hooked(origin, handler="index.handler", code=str(folder)))
    response = await viewer.get("/py")
    assert response.status_code == 200, response.text
    headers = seen(origin, "/py")
    assert headers["x-helper"] == "python helper"  # its sibling module, from its folder
    assert headers["x-handler"] == "index.handler"  # _HANDLER as Lambda sets it
    assert headers["x-task-root"] == str(folder)
    assert headers["x-cwd"] == str(folder)
    assert headers["x-function-name"] == "us-east-1.python_fn"


async def test_a_node_folder_with_index_mjs_answers(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    folder = FUNCTIONS / "node_fn"
    viewer = await start_edge(hooked(origin, handler="index.handler", code=str(folder)))
    response = await viewer.get("/js")
    assert response.status_code == 200, response.text
    headers = seen(origin, "/js")
    assert headers["x-helper"] == "node helper"
    assert headers["x-handler"] == "index.handler"
    assert headers["x-task-root"] == str(folder)
    assert headers["x-cwd"] == str(folder)
    assert headers["x-function-name"] == "us-east-1.node_fn"


@pytest.mark.parametrize(
    ("handler", "code", "app"),
    [("src/app.handler", "nested", "nested"), ("pkg.mod.handler", "dotted", "dotted")],
)
async def test_a_module_path_in_a_subfolder_runs_in_the_functions_folder(
    origin: RecordingOrigin, start_edge: StartEdge, handler: str, code: str, app: str
) -> None:
    folder = FUNCTIONS / code
    viewer = await start_edge(hooked(origin, handler=handler, code=str(folder)))
    assert (await viewer.get("/nested")).status_code == 200
    headers = seen(origin, "/nested")
    assert headers["x-app"] == app
    if "x-cwd" in headers:
        assert headers["x-cwd"] == str(folder)  # the code folder, not src/


@pytest.mark.parametrize(
    ("runtime", "language"), [("python3.12", "python"), ("nodejs20.x", "node")]
)
async def test_a_runtime_says_which_file_of_an_ambiguous_folder_runs(
    origin: RecordingOrigin, start_edge: StartEdge, runtime: str, language: str
) -> None:
    code = str(FUNCTIONS / "ambiguous")
    viewer = await start_edge(hooked(origin, handler="index.handler", code=code, runtime=runtime))
    assert (await viewer.get("/which")).status_code == 200
    assert seen(origin, "/which")["x-language"] == language


async def test_an_edge_functions_entry_in_lambdas_form_serves_its_arn(
    origin: RecordingOrigin, start_edge: StartEdge
) -> None:
    document = hooked(origin, lambda_arn=ARN)
    entry = {
        "handler": "index.handler",
        "code": str(FUNCTIONS / "node_fn"),
        "runtime": "nodejs20.x",
    }
    document["edge"]["functions"] = {ARN: entry}
    viewer = await start_edge(document)
    assert (await viewer.get("/arn")).status_code == 200
    headers = seen(origin, "/arn")
    assert headers["x-helper"] == "node helper"
    assert headers["x-handler"] == "index.handler"


# --- refused at start, naming the key path ----------------------------------------------------


def problems(tmp_path: Path, document: dict[str, Any]) -> dict[str, str]:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return dict(caught.value.problems)


def lambda_form(tmp_path: Path, **association: Any) -> dict[str, Any]:
    return distribution(
        8080,
        lambda_function_association=[{"event_type": "viewer-request", **association}],
    )


def test_an_ambiguous_folder_is_refused_naming_the_key_and_the_files(tmp_path: Path) -> None:
    code = FUNCTIONS / "ambiguous"
    found = problems(tmp_path, lambda_form(tmp_path, handler="index.handler", code=str(code)))
    message = found[f"{P_HOOK}.code"]
    assert "index.py and index.js" in message and str(code) in message
    assert "set runtime" in message


def test_a_folder_without_the_file_is_refused_naming_the_files_tried(tmp_path: Path) -> None:
    code = FUNCTIONS / "no_index"
    found = problems(tmp_path, lambda_form(tmp_path, handler="index.handler", code=str(code)))
    message = found[f"{P_HOOK}.code"]
    assert str(code) in message
    assert "tried index.py, index.js, index.mjs, index.cjs" in message


def test_a_runtime_narrows_the_files_tried(tmp_path: Path) -> None:
    code = FUNCTIONS / "python_fn"
    document = lambda_form(tmp_path, handler="index.handler", code=str(code), runtime="nodejs22.x")
    message = problems(tmp_path, document)[f"{P_HOOK}.code"]
    assert "tried index.js, index.mjs, index.cjs" in message


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    document = lambda_form(tmp_path, handler="index.handler", code="handlers/router")
    message = problems(tmp_path, document)[f"{P_HOOK}.code"]
    assert f"no such function folder: {tmp_path / 'handlers' / 'router'}" == message


def test_lambdas_form_without_code_is_refused_saying_to_add_it(tmp_path: Path) -> None:
    found = problems(tmp_path, lambda_form(tmp_path, handler="index.handler"))
    assert "add code: <function folder>" in found[f"{P_HOOK}.handler"]


def test_code_with_a_file_spec_is_refused(tmp_path: Path) -> None:
    document = lambda_form(tmp_path, handler="index.py:handler", code="handlers")
    assert "goes with Lambda's handler form" in problems(tmp_path, document)[f"{P_HOOK}.code"]


@pytest.mark.parametrize("handler", ["../escape.handler", "/abs/index.handler", "index"])
def test_a_handler_string_that_is_not_lambdas_form_is_refused(tmp_path: Path, handler: str) -> None:
    document = lambda_form(tmp_path, handler=handler, code=str(FUNCTIONS / "python_fn"))
    assert 'Lambda\'s "module.function"' in problems(tmp_path, document)[f"{P_HOOK}.handler"]


def test_an_edge_functions_entry_is_checked_under_its_own_key(tmp_path: Path) -> None:
    document = lambda_form(tmp_path, lambda_arn=ARN)
    document["edge"]["functions"] = {ARN: {"handler": "index.handler"}}
    found = problems(tmp_path, document)
    assert "add code: <function folder>" in found[f'edge.functions["{ARN}"].handler']
    document["edge"]["functions"] = {
        ARN: {"handler": "index.handler", "code": str(FUNCTIONS / "ambiguous")}
    }
    assert "set runtime" in problems(tmp_path, document)[f'edge.functions["{ARN}"].code']


def test_a_relative_code_folder_is_relative_to_the_config(tmp_path: Path) -> None:
    folder = tmp_path / "handlers" / "router"
    folder.mkdir(parents=True)
    (folder / "index.py").write_text("def handler(event, context):\n    return None\n")
    path = tmp_path / "edge.yaml"
    document = lambda_form(tmp_path, handler="index.handler", code="handlers/router")
    path.write_text(yaml.safe_dump(document))
    hook = load_config(path).config.distribution.default_cache_behavior
    association = hook.lambda_function_association[0]
    assert (association.handler_spec, association.handler_code) == (
        "index.handler",
        "handlers/router",
    )


# --- edgeproxy invoke --------------------------------------------------------------------------


def test_invoke_takes_lambdas_form_with_code() -> None:
    folder = FUNCTIONS / "python_fn"
    command = [sys.executable, "-m", "edgeproxy", "invoke", "index.handler", "--code", str(folder)]
    done = subprocess.run(
        [*command, "--event-type", "viewer-request", "--isolation", "process"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    headers = yaml.safe_load(done.stdout)["headers"]
    assert headers["x-helper"] == [{"key": "x-helper", "value": "python helper"}]
    assert headers["x-handler"][0]["value"] == "index.handler"


def test_invoke_refuses_lambdas_form_without_code() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "edgeproxy", "invoke", "index.handler"]
        + ["--event-type", "viewer-request"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 2
    assert "--handler" in done.stderr and "add code: <function folder>" in done.stderr
