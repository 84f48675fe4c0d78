"""Where the logs go (``edge.logs``), through the real CLI: the access log as a CloudFront
standard log (``#Version``/``#Fields:`` header, tab separated) or JSON lines, to stderr, a
file or nowhere; the functions' output to a file of their own; ``--workers`` keeping all."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from test_demo import demo_copy

from edgeproxy.access_log import FIELDS

PRINTER = """\
def handler(event, context):
    print("hello from print")
    return event["Records"][0]["cf"]["request"]
"""


@dataclass
class Served:
    config: Path
    stdout: Path
    stderr: Path

    @property
    def edge(self) -> dict[str, Any]:
        edge: dict[str, Any] = yaml.safe_load(self.config.read_text())["edge"]
        return edge

    def get(self, path: str) -> httpx.Response:
        port = self.edge["listeners"]["http_port"]
        return httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Host": "www.example.com"})


def demo(tmp_path: Path, **logs: Any) -> Path:
    """The demo config with ``edge.logs`` and a ``/print/*`` behavior whose viewer-request
    handler prints."""
    config = demo_copy(tmp_path)
    (config.parent / "handlers" / "printer.py").write_text(PRINTER)
    document = yaml.safe_load(config.read_text())
    dist = document["distribution"]
    printing = {**dist["ordered_cache_behavior"][0], "path_pattern": "/print/*"}
    printing["lambda_function_association"] = [
        {"event_type": "viewer-request", "handler": "handlers/printer.py:handler"}
    ]
    dist["ordered_cache_behavior"].insert(0, printing)
    if logs:
        document["edge"]["logs"] = logs
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


@contextmanager
def serving(config: Path, *flags: str) -> Iterator[Served]:
    served = Served(config, config.parent / "out.log", config.parent / "err.log")
    command = [sys.executable, "-m", "edgeproxy", "serve", "--config", str(config), *flags]
    with served.stdout.open("w") as out, served.stderr.open("w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=config.parent)
    try:
        admin = served.edge["admin"]["port"]
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, served.stderr.read_text()
            try:
                httpx.get(f"http://127.0.0.1:{admin}/stats", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, served.stderr.read_text()
                time.sleep(0.1)
        yield served
    finally:
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=20)


def access_lines(text: str) -> list[dict[str, str]]:
    rows = [line.split("\t") for line in text.splitlines() if line.count("\t") > 20]
    return [dict(zip(FIELDS, row, strict=True)) for row in rows]


def test_access_log_on_stderr_is_a_cloudfront_standard_log(tmp_path: Path):
    # Standard log files start with #Version and #Fields lines, fields tab separated
    # (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/standard-logs-reference.html).
    with serving(demo(tmp_path)) as served:
        assert served.get("/index.html").status_code == 200
    stderr = served.stderr.read_text()
    assert "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip" in stderr
    assert stderr.count("#Fields:") == 1
    (line,) = access_lines(stderr)
    assert line["cs-uri-stem"] == "/index.html" and line["sc-status"] == "200"
    assert line["x-edge-result-type"] == "Miss"


def test_access_log_as_json_lines_in_a_file(tmp_path: Path):
    with serving(
        demo(tmp_path, access={"destination": "logs/access.jsonl", "format": "json"})
    ) as served:
        served.get("/index.html")
        served.get("/index.html")
    records = [json.loads(line) for line in (tmp_path / "config/logs/access.jsonl").open()]
    assert [r["x-edge-result-type"] for r in records] == ["Miss", "Hit"]
    assert records[0]["cs-uri-stem"] == "/index.html" and records[0]["sc-status"] == "200"
    assert isinstance(records[0]["timestamp"], float)
    assert records[0]["cs(Referer)"] is None and records[0]["fle-status"] is None  # empty: null
    stderr = served.stderr.read_text()
    assert access_lines(stderr) == [] and "cs-uri-stem" not in stderr  # not on stderr too


def test_access_log_off(tmp_path: Path):
    with serving(demo(tmp_path, access={"destination": "off"})) as served:
        assert served.get("/index.html").status_code == 200
    stderr = served.stderr.read_text()
    assert "#Fields" not in stderr and access_lines(stderr) == []


def test_functions_output_goes_to_its_own_file(tmp_path: Path):
    with serving(demo(tmp_path, functions="logs/functions.log")) as served:
        assert served.get("/print/a").status_code in (200, 404)
    functions = (tmp_path / "config/logs/functions.log").read_text()
    assert "hello from print" in functions
    assert "REPORT RequestId:" in functions
    stderr = served.stderr.read_text()
    assert "hello from print" not in stderr and "REPORT" not in stderr
    assert len(access_lines(stderr)) == 1  # the access log stays on stderr


def test_workers_keep_every_log_and_the_banner_lists_every_listener(tmp_path: Path):
    with serving(demo(tmp_path), "--workers", "2") as served:
        for _ in range(6):
            assert served.get("/print/a").status_code in (200, 404)
    stderr, stdout = served.stderr.read_text(), served.stdout.read_text()
    assert stderr.count("#Fields:") == 1
    assert len(access_lines(stderr)) == 6, stderr
    assert stderr.count("hello from print") == 6 and stderr.count("REPORT RequestId") == 6
    listeners = served.edge["listeners"]
    assert f"on http://127.0.0.1:{listeners['http_port']}/" in stdout
    assert f"on https://127.0.0.1:{listeners['https_port']}/" in stdout
    assert f"admin API on http://127.0.0.1:{served.edge['admin']['port']}" in stdout
    assert f"demo origin on http://127.0.0.1:{served.edge['demo_origin']['port']}" in stdout
