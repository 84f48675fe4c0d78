"""CloudFront's documented example functions (equivalents written for these tests, see
tests/data/functions/cloudfront_examples), ``edgeproxy test-function`` and
``edgeproxy events generate --kind function``.

Sources: DG example functions
https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/functions-example-code.html
and aws-samples/amazon-cloudfront-functions (examples of the same names); test-function
output: https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_TestResult.html
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgeproxy.cli import main
from tests.conftest import RecordingOrigin, StartEdge
from tests.test_cloudfront_functions import KVS, store_file, with_functions

EXAMPLES = Path(__file__).parent / "data" / "functions" / "cloudfront_examples"


def example(name: str) -> str:
    return f"cloudfront_examples/{name}"


async def test_add_security_headers(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(
        with_functions(origin.port, {"viewer-response": example("add_security_headers.js")})
    )
    response = await viewer.get("/page")
    assert response.headers["strict-transport-security"].startswith("max-age=63072000")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_url_rewrite_single_page_apps(origin: RecordingOrigin, start_edge: StartEdge):
    viewer = await start_edge(
        with_functions(origin.port, {"viewer-request": example("url_rewrite_single_page_apps.js")})
    )
    await viewer.get("/app/settings")
    await viewer.get("/static/app.js")
    assert [r.path for r in origin.seen] == ["/index.html", "/static/app.js"]


async def test_redirect_based_on_country(origin: RecordingOrigin, start_edge: StartEdge):
    document = with_functions(
        origin.port,
        {"viewer-request": example("redirect_based_on_country.js")},
        forwarded_values={
            "query_string": False,
            "headers": ["CloudFront-Viewer-Country"],
            "cookies": {"forward": "none"},
        },
    )
    document["edge"]["geo"] = {"default": {"country": "DE"}}
    viewer = await start_edge(document)
    response = await viewer.get("/page", headers={"Host": "edge.test"})
    assert response.status_code == 302
    assert response.headers["location"] == "https://edge.test/de/index.html"
    assert response.headers["x-cache"] == "FunctionGeneratedResponse from cloudfront"


async def test_kvs_key_value_pairs(origin: RecordingOrigin, start_edge: StartEdge, tmp_path: Path):
    stores = {KVS: store_file(tmp_path / "kvs.json", {"v1": "v2"})}
    viewer = await start_edge(
        with_functions(
            origin.port, {"viewer-request": example("kvs_key_value_pairs.js")}, stores=stores
        )
    )
    await viewer.get("/v1/page")
    await viewer.get("/other/page")
    assert [r.path for r in origin.seen] == ["/v2/page", "/other/page"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(["--log-level", "WARNING", *argv])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_test_function_prints_the_test_result(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    event = tmp_path / "event.json"
    _, generated = _run(
        capsys, "events", "generate", "viewer-request", "--kind", "function", "--uri", "/v1/x"
    )
    assert generated["version"] == "1.0"
    assert generated["context"]["eventType"] == "viewer-request"
    event.write_text(json.dumps(generated))
    store = store_file(tmp_path / "kvs.json", {"v1": "v2"})
    code, result = _run(
        capsys,
        "test-function",
        str(EXAMPLES / "kvs_key_value_pairs.js"),
        "--event-object",
        str(event),
        "--stage",
        "viewer-request",
        "--key-value-store",
        f"{KVS}={store}",
    )
    assert code == 0
    test = result["TestResult"]
    assert set(test) == {
        "FunctionSummary",
        "ComputeUtilization",
        "FunctionExecutionLogs",
        "FunctionErrorMessage",
        "FunctionOutput",
    }
    assert test["FunctionSummary"]["Name"] == "kvs_key_value_pairs"
    assert test["FunctionExecutionLogs"] == ["/v1/x -> /v2/x"]
    assert json.loads(test["FunctionOutput"])["request"]["uri"] == "/v2/x"
    assert 0 <= int(test["ComputeUtilization"]) <= 100


def test_test_function_reports_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    event = tmp_path / "event.json"
    _, generated = _run(capsys, "events", "generate", "viewer-request", "--kind", "function")
    event.write_text(json.dumps(generated))
    code, result = _run(
        capsys, "test-function", str(EXAMPLES.parent / "throws.js"), "--event-object", str(event)
    )
    assert code == 1
    assert result["TestResult"]["FunctionErrorMessage"] == "Error: boom"
    assert result["TestResult"]["FunctionOutput"] == ""


DEMO = Path(__file__).resolve().parent.parent / "config" / "distribution.yaml"


async def test_the_demo_config_runs_its_cloudfront_functions():
    import httpx

    from edgeproxy.config.edge_settings import AdminListener, Listeners
    from edgeproxy.config.loading import load_config
    from edgeproxy.runtime import running_edge

    config = load_config(DEMO).config
    demo = config.edge.demo_origin
    assert demo is not None
    edge = config.edge.model_copy(
        update={
            "listeners": Listeners(http_port=0),
            "admin": AdminListener(port=None),
            "demo_origin": demo.model_copy(update={"port": 0}),
            "cache": config.edge.cache.model_copy(
                update={"disk": config.edge.cache.disk.model_copy(update={"enabled": False})}
            ),
        }
    )
    async with (
        running_edge(config.model_copy(update={"edge": edge}), use_dns=False) as running,
        httpx.AsyncClient() as client,
    ):
        docs = await client.get(running.url("/cf/docs/"))
        assert docs.status_code == 200
        assert "URL-rewrite CloudFront Function" in docs.text
        assert docs.headers["x-powered-by-function"] == "add_headers"
        go = await client.get(running.url("/go/docs"))
        assert go.status_code == 301
        assert go.headers["location"] == "/cf/docs/"
        assert go.headers["x-cache"] == "FunctionGeneratedResponse from cloudfront"
