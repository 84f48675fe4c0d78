"""The examples of docs/configuration.md (config/examples/), one per source format, each
loaded with config/examples/edge.yaml as the docs say and served through a real edge: the
viewer-request function the source names runs, the origin gets the request under the origin
path the source gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RecordingOrigin
from test_config_sources import StartFiles, https_get, start_files

from edgeproxy.config.loading import load_config

__all__ = ["start_files"]  # the fixture, shared with test_config_sources

EXAMPLES = Path(__file__).parent.parent / "config" / "examples"
EDGE = EXAMPLES / "edge.yaml"
SOURCES = {
    "terraform": EXAMPLES / "terraform",
    "terraform show -json": EXAMPLES / "terraform" / "terraform-show.json",
    "get-distribution-config": EXAMPLES / "get-distribution-config.json",
    "cloudformation": EXAMPLES / "cloudformation.yaml",
}


def local_overlay(tmp_path: Path, origin: RecordingOrigin) -> Path:
    """edge.yaml's names sent to the test's origin, and free ports."""
    edge: dict[str, Any] = yaml.safe_load(EDGE.read_text())["edge"]
    document = {
        "edge": {
            "listeners": {"http_port": 0, "https_port": 0},
            "admin": {"port": 0},
            "resolve": {name: f"127.0.0.1:{origin.port}" for name in edge["resolve"]},
            "tls": {"cert_dir": str(tmp_path / "certs")},
        }
    }
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
def test_each_example_loads_with_the_example_edge_yaml(source: Path):
    loaded = load_config([source, EDGE])
    assert loaded.config.edge.resolve["api.example.com"] == "127.0.0.1:8081"
    assert not [w for w in loaded.warnings if "not resolved" in w]


@pytest.mark.parametrize("source", SOURCES.values(), ids=SOURCES.keys())
async def test_each_example_serves_through_a_real_edge(
    source: Path, tmp_path: Path, origin: RecordingOrigin, start_files: StartFiles
):
    viewer = await start_files([source, EDGE, local_overlay(tmp_path, origin)])
    api = await https_get(viewer, "/api/items?page=1")
    assert api.status_code == 200
    assert api.headers["x-cache"] == "Miss from cloudfront"
    seen = origin.requests_for("/dev/api/items")[-1]
    assert seen.query_string == "page=1"
    assert len(seen.headers["X-Request-Id"]) == 36  # the Lambda@Edge function's uuid
    assert await viewer.last_stages() == ["viewer-request"]

    # The CloudFront Function's URL rewrite on the default behavior (not in the template).
    docs = await https_get(viewer, "/docs/")
    assert docs.status_code == 200
    rewritten = "/docs/index.html" if source != SOURCES["cloudformation"] else "/docs/"
    assert origin.requests_for(rewritten)
