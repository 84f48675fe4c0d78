"""``edgeproxy invoke`` and ``edgeproxy events generate`` through the CLI's entry point."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import HANDLERS, distribution, handler

from edgeproxy.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--log-level", "WARNING", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def spec(name: str) -> str:
    file, _, func = name.partition(":")
    return f"{HANDLERS / file}:{func or 'handler'}"


def generate(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, _ = run(capsys, "events", "generate", *argv)
    assert code == 0
    event: dict[str, Any] = json.loads(out)
    return event


def test_valid_result_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "invoke",
        spec("passthrough.py"),
        "--event-type",
        "viewer-request",
        "--uri",
        "/docs/a b",
        "--querystring",
        "b=2&a=1&flag",
        "--header",
        "X-Multi: 1",
        "--header",
        "x-multi: 2",
    )
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["uri"] == "/docs/a b" and result["querystring"] == "b=2&a=1&flag"
    assert result["headers"]["x-multi"] == [
        {"key": "X-Multi", "value": "1"},
        {"key": "x-multi", "value": "2"},
    ]
    assert result["headers"]["host"] == [{"key": "Host", "value": "d111111abcdef8.cloudfront.net"}]


def test_broken_rule_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "invoke", spec("changes_read_only_header.py"), "--event-type", "viewer-request"
    )
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"viewer-request handler {spec('changes_read_only_header.py')} failed: the viewer gets "
        "502 with X-Cache: LambdaValidationError from cloudfront",
        "  rule: read-only-header",
        "  Lambda function result failed validation, the function tried to change read-only "
        "header, headerName : Host",
    ]


@pytest.mark.parametrize(
    ("rule", "stage"),
    [
        ("generated-size", "viewer-request"),
        ("status-unchanged", "viewer-response"),
        ("origin-valid", "origin-request"),
        ("disallowed-header", "origin-response"),
    ],
)
def test_rules_per_stage(capsys: pytest.CaptureFixture[str], rule: str, stage: str) -> None:
    code, _, err = run(
        capsys, "invoke", spec("breaks_rule.py"), "--event-type", stage, "--uri", f"/b/{rule}"
    )
    assert code == 1
    assert f"  rule: {rule}" in err.splitlines()


def test_exception_and_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "invoke", spec("raises.py"), "--event-type", "viewer-request")
    assert code == 1
    assert "503 with X-Cache: LambdaExecutionError from cloudfront" in err
    assert "ValueError: cannot parse '/'" in err
    code, _, err = run(
        capsys,
        "invoke",
        spec("sleeps.py"),
        "--event-type",
        "origin-request",
        "--timeout",
        "0.2",
        "--header",
        "X-Sleep: 5",
    )
    assert code == 1
    assert "LambdaExecutionError" in err and "Task timed out after 0.20 seconds" in err


@pytest.mark.parametrize("isolation", ["thread", "inline", "process"])
def test_isolations(capsys: pytest.CaptureFixture[str], isolation: str) -> None:
    code, out, _ = run(
        capsys,
        "invoke",
        spec("counter.py"),
        "--event-type",
        "viewer-request",
        "--isolation",
        isolation,
    )
    assert code == 0 and json.loads(out)["headers"]["x-calls"][0]["value"].isdigit()


def test_event_file_round_trip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    event = generate(capsys, "origin-response", "--uri", "/img.png", "--status", "404")
    cf = event["Records"][0]["cf"]
    assert cf["config"]["eventType"] == "origin-response"
    assert cf["request"]["origin"]["custom"]["domainName"] == "example.org"
    assert cf["response"]["status"] == "404" and cf["response"]["statusDescription"] == "Not Found"
    cf["response"]["headers"]["x-from-file"] = [{"key": "X-From-File", "value": "yes"}]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, out, err = run(
        capsys,
        "invoke",
        spec("passthrough.py:response_handler"),
        "--event-type",
        "origin-response",
        "--event",
        str(path),
    )
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["status"] == "404" and result["headers"]["x-from-file"][0]["value"] == "yes"


def test_event_file_read_only_rules_compare_with_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    event = generate(capsys, "origin-response")
    event["Records"][0]["cf"]["response"]["headers"]["transfer-encoding"] = [
        {"key": "Transfer-Encoding", "value": "chunked"}
    ]
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, _, err = run(
        capsys,
        "invoke",
        spec("changes_read_only_header.py:delete_transfer_encoding"),
        "--event-type",
        "origin-response",
        "--event",
        str(path),
    )
    assert code == 1 and "delete read-only header, headerName : Transfer-Encoding" in err


def test_include_body(capsys: pytest.CaptureFixture[str]) -> None:
    event = generate(
        capsys,
        "viewer-request",
        "--method",
        "POST",
        "--include-body",
        "--body",
        "name=ann&role=user",
    )
    request = event["Records"][0]["cf"]["request"]
    assert request["body"] == {
        "inputTruncated": False,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(b"name=ann&role=user").decode(),
    }
    code, out, _ = run(
        capsys,
        "invoke",
        spec("rewrites_form_body.py"),
        "--event-type",
        "viewer-request",
        "--method",
        "POST",
        "--include-body",
        "--body",
        "name=ann&role=user",
    )
    assert code == 0
    assert json.loads(out)["body"]["data"] == "name=ann&role=admin"


def test_viewer_request_sample_has_no_origin(capsys: pytest.CaptureFixture[str]) -> None:
    request = generate(capsys, "viewer-request")["Records"][0]["cf"]["request"]
    assert "origin" not in request and "body" not in request
    assert request["headers"]["user-agent"][0]["value"].startswith("curl/")


def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text('{"Records": []}')
    code, _, err = run(
        capsys,
        "invoke",
        spec("passthrough.py"),
        "--event-type",
        "viewer-request",
        "--event",
        str(path),
    )
    assert code == 2 and "is not a CloudFront event" in err
    code, _, err = run(capsys, "invoke", spec("syntax_error.py"), "--event-type", "viewer-request")
    assert code == 2 and "syntax_error.py" in err and "line 4" in err
    with pytest.raises(SystemExit):
        main(["invoke", spec("passthrough.py"), "--event-type", "viewer-requests"])


def test_a_node_handler_runs_in_its_runtime(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "invoke",
        spec("node/async_cjs.js"),
        "--event-type",
        "viewer-request",
        "--uri",
        "/generated",
    )
    assert code == 0
    assert json.loads(out) == {"status": "200", "body": "hello from async"}


@pytest.mark.parametrize(
    "stage", ["viewer-request", "origin-request", "origin-response", "viewer-response"]
)
@pytest.mark.parametrize("style", ["callback.js", "esm.mjs"])
def test_a_generated_event_file_runs_a_node_handler_at_each_stage(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style: str, stage: str
) -> None:
    event = generate(capsys, stage, "--uri", "/ok")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, out, err = run(
        capsys, "invoke", spec(f"node/styles/{style}"), "--event-type", stage, "--event", str(path)
    )
    assert (code, err) == (0, "")
    name = style.split(".")[0]
    assert json.loads(out)["headers"][f"x-node-{name}"] == [
        {"key": f"X-Node-{name}", "value": stage}
    ]


def test_node_failures_are_reported_as_at_the_edge(capsys: pytest.CaptureFixture[str]) -> None:
    def invoke(file: str, uri: str, *more: str) -> str:
        code, _, err = run(
            capsys, "invoke", spec(file), "--event-type", "viewer-request", "--uri", uri, *more
        )
        assert code == 1
        return err

    err = invoke("node/styles/promise.js", "/throw")
    assert "503 with X-Cache: LambdaExecutionError from cloudfront" in err
    assert "Error: promise handler failed on purpose" in err
    assert "The JSON output must be an object type" in invoke("node/styles/async.js", "/invalid")
    assert "Task timed out after 0.30 seconds" in invoke(
        "node/styles/callback.js", "/hang", "--timeout", "0.3"
    )
    assert "Runtime.OutOfMemory" in invoke("node/hog_buffer.js", "/hog")  # 128 MB at viewer-request


# -- stdout is the JSON alone; arguments that contradict each other are refused ---------------


def invoke_process(*argv: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "edgeproxy", "invoke", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("isolation", ["thread", "process", "inline"])
def test_handler_output_goes_to_stderr(isolation: str) -> None:
    done = invoke_process(
        spec("prints.py"), "--event-type", "viewer-request", "--uri", "/p", "--isolation", isolation
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["uri"] == "/p"  # nothing but the JSON
    assert "debug: looking at /p" in done.stderr


def test_body_without_include_body_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "invoke", spec("passthrough.py"), "--event-type", "viewer-request", "--body", "x"
    )
    assert code == 2 and out == ""
    assert "--body" in err and "--include-body" in err


def test_event_file_of_another_stage_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    event = generate(capsys, "origin-request")
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    code, out, err = run(
        capsys,
        "invoke",
        spec("passthrough.py"),
        "--event-type",
        "viewer-request",
        "--event",
        str(path),
    )
    assert code == 2 and out == ""
    assert "origin-request" in err and "viewer-request" in err


# -- invoke --config FILE --path P: the call the edge would make for that path -----------------

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)


def edge_config(tmp_path: Path) -> Path:
    """/api/* forwards CloudFront-Is-Mobile-Viewer and runs reports_cloudfront_headers.py at
    origin-request with a 0.2 s timeout; /form/* reads bodies; the default runs nothing."""
    document = distribution(8000)
    reports = {
        "event_type": "origin-request",
        "handler": handler("reports_cloudfront_headers.py:handler"),
        "timeout": 0.2,
    }
    api = {
        **document["distribution"]["default_cache_behavior"],
        "path_pattern": "/api/*",
        "forwarded_values": {
            "query_string": False,
            "headers": ["CloudFront-Is-Mobile-Viewer", "CloudFront-Viewer-Country"],
            "cookies": {"forward": "none"},
        },
        "lambda_function_association": [reports],
    }
    form = {
        **document["distribution"]["default_cache_behavior"],
        "path_pattern": "/form/*",
        "lambda_function_association": [
            {
                "event_type": "viewer-request",
                "handler": handler("rewrites_form_body.py:handler"),
                "include_body": True,
            }
        ],
    }
    document["distribution"]["ordered_cache_behavior"] = [api, form]
    document["edge"]["geo"] = {"default": {"country": "FR"}}
    path = tmp_path / "distribution.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_config_derives_the_cloudfront_headers_and_the_behaviors_function(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The behavior the path selects forwards CloudFront-Is-Mobile-Viewer (from the
    # User-Agent) and -Viewer-Country (from the address); the origin-request function sees
    # them, as through the edge (DG adding-cloudfront-headers, lambda-cloudfront-trigger-events).
    config = str(edge_config(tmp_path))
    argv = ["--event-type", "origin-request", "--config", config, "--path", "/api/x"]
    code, out, err = run(capsys, "invoke", *argv, "--header", f"User-Agent: {IPHONE_UA}")
    assert (code, err) == (0, "")
    saw = json.loads(out)["headers"]["x-saw"][0]["value"]
    assert saw == "cloudfront-is-mobile-viewer=true;cloudfront-viewer-country=FR"
    # the default behavior forwards none: the same function, named, sees none
    named = spec("reports_cloudfront_headers.py")
    code, out, _ = run(capsys, "invoke", named, *argv[:-1], "/other")
    assert code == 0 and json.loads(out)["headers"]["x-saw"][0]["value"] == "-"


def test_config_gives_the_associations_timeout(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The association's timeout (0.2 s) bounds a named function put in its place.
    config = str(edge_config(tmp_path))
    code, _, err = run(
        capsys,
        "invoke",
        spec("sleeps.py"),
        "--event-type",
        "origin-request",
        "--config",
        config,
        "--path",
        "/api/slow",
        "--header",
        "X-Sleep: 3",
    )
    assert code == 1 and "Task timed out after 0.20 seconds" in err


def test_config_gives_the_associations_include_body(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # include_body is the association's (DG lambda-include-body-access): /form/* has it,
    # the default behavior does not, and --body there is an error that says where.
    config = str(edge_config(tmp_path))
    base = ["invoke", "--event-type", "viewer-request", "--config", config, "--method", "POST"]
    code, out, err = run(capsys, *base, "--path", "/form/a", "--body", "name=ann&role=user")
    assert (code, err) == (0, "")
    assert json.loads(out)["body"]["data"] == "name=ann&role=admin"
    named = spec("rewrites_form_body.py")
    code, out, err = run(capsys, *base, named, "--path", "/b", "--body", "x")
    assert code == 2 and out == ""
    assert "distribution.default_cache_behavior.lambda_function_association" in err
    assert "include_body" in err


def test_config_without_a_function_at_the_stage_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = str(edge_config(tmp_path))
    code, out, err = run(
        capsys, "invoke", "--event-type", "viewer-request", "--config", config, "--path", "/x"
    )
    assert code == 2 and out == ""
    assert "no function at viewer-request" in err and "--path /x" in err
    code, _, err = run(capsys, "invoke", "--event-type", "viewer-request")
    assert code == 2 and "--config" in err
