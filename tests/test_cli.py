"""The CLI refuses what cannot be served, before opening any socket, and says why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from conftest import distribution


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeproxy.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "distribution.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_bad_config_exits_nonzero_naming_every_key(tmp_path: Path):
    document = distribution(8000, min_ttl=-5)
    document["distribution"]["origin"][0]["custom_origin_config"]["origin_read_timeout"] = 500
    result = run_cli("serve", "--config", str(write(tmp_path, document)))
    assert result.returncode == 2
    assert "distribution.default_cache_behavior.min_ttl" in result.stderr
    assert "distribution.origin[0].custom_origin_config.origin_read_timeout" in result.stderr


def test_unknown_key_is_refused(tmp_path: Path):
    document = distribution(8000)
    document["distribution"]["default_cache_behavior"]["cache_everything"] = True
    result = run_cli("validate", "--config", str(write(tmp_path, document)))
    assert result.returncode == 2
    assert "distribution.default_cache_behavior.cache_everything" in result.stderr


def test_missing_handler_file_is_reported_with_its_path(tmp_path: Path):
    missing = tmp_path / "handlers" / "nowhere.py"
    document = distribution(
        8000,
        lambda_function_association=[
            {"event_type": "viewer-request", "handler": f"{missing}:handler"}
        ],
    )
    result = run_cli("serve", "--config", str(write(tmp_path, document)))
    assert result.returncode == 2
    assert str(missing) in result.stderr


def test_handler_that_does_not_import_is_reported(tmp_path: Path):
    broken = tmp_path / "broken.py"
    broken.write_text("def handler(event, context)\n    return event\n")
    document = distribution(
        8000,
        lambda_function_association=[
            {"event_type": "viewer-request", "handler": "broken.py:handler"}
        ],
    )
    result = run_cli("validate", "--config", str(write(tmp_path, document)))
    assert result.returncode == 2
    assert "broken.py" in result.stderr
    assert "SyntaxError" in result.stderr or "invalid syntax" in result.stderr


def test_demo_config_validates():
    root = Path(__file__).resolve().parent.parent
    result = run_cli("validate", "--config", str(root / "config" / "distribution.yaml"))
    assert result.returncode == 0, result.stderr


def test_log_level_is_accepted_after_the_command(tmp_path: Path):
    config = write(tmp_path, distribution(8080))
    done = run_cli("validate", "--config", str(config), "--log-level", "WARNING")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": OK")
