"""The CLI refuses what cannot be served, before opening any socket, and says why."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
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


# -- a listener that cannot bind: which one, where, and what moves it -------------------------


@pytest.fixture
def occupied() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def served(tmp_path: Path, document: dict, *flags: str) -> subprocess.CompletedProcess[str]:
    return run_cli("serve", "--config", str(write(tmp_path, document)), *flags)


def assert_one_line(result: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("edgeproxy:")]
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


def test_a_viewer_port_in_use_names_the_listener_and_what_moves_it(
    tmp_path: Path, occupied: int
) -> None:
    document = distribution(8000)
    document["edge"]["listeners"]["http_port"] = occupied
    result = served(tmp_path, document)
    assert_one_line(
        result, "HTTP listener", f"127.0.0.1:{occupied}", "--port", "edge.listeners.http_port"
    )


def test_an_admin_port_in_use_names_the_admin_api_and_what_moves_it(
    tmp_path: Path, occupied: int
) -> None:
    document = distribution(8000)
    document["edge"]["admin"]["port"] = occupied
    result = served(tmp_path, document)
    assert_one_line(result, "admin API", f"127.0.0.1:{occupied}", "--admin-port", "edge.admin.port")


def test_a_demo_origin_port_in_use_names_it_and_what_moves_it(
    tmp_path: Path, occupied: int
) -> None:
    (tmp_path / "site").mkdir()
    document = distribution(8000)
    document["edge"]["demo_origin"] = {"origin_id": "test", "root": "site", "port": occupied}
    result = served(tmp_path, document)
    assert_one_line(
        result, "demo origin", f"127.0.0.1:{occupied}", "--origin-port", "edge.demo_origin.port"
    )


def test_a_viewer_port_in_use_under_workers_is_said_the_same_way(
    tmp_path: Path, occupied: int
) -> None:
    document = distribution(8000)
    document["edge"]["listeners"]["http_port"] = occupied
    result = served(tmp_path, document, "--workers", "2")
    assert_one_line(result, "HTTP listener", f"127.0.0.1:{occupied}", "--port")


# -- --admin-port and --origin-port move the admin API and the demo origin ---------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_admin_port_and_origin_port_flags_move_those_listeners(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("demo page")
    document = distribution(8000)
    document["edge"]["demo_origin"] = {"origin_id": "test", "root": "site", "port": 1}
    document["edge"]["admin"]["port"] = 1  # the config says 1 for both: the flags must win
    admin, origin = free_port(), free_port()
    command = [
        sys.executable, "-m", "edgeproxy", "serve", "--config", str(write(tmp_path, document)),
        "--admin-port", str(admin), "--origin-port", str(origin),
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline().decode() for _ in range(3)]
        assert f"edgeproxy: demo origin on http://127.0.0.1:{origin}\n" in banner
        assert f"edgeproxy: admin API on http://127.0.0.1:{admin}\n" in banner
        with urllib.request.urlopen(f"http://127.0.0.1:{origin}/index.html", timeout=5) as page:
            assert page.read() == b"demo page"
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/exchanges", timeout=5) as answer:
            assert answer.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_origin_port_without_a_demo_origin_is_refused(tmp_path: Path) -> None:
    result = served(tmp_path, distribution(8000), "--origin-port", "9000")
    assert result.returncode == 2
    assert "--origin-port: the config has no edge.demo_origin" in result.stderr


# -- validate: every problem in one run, handlers included --------------------------------------


def test_validate_reports_bad_keys_and_broken_handlers_in_one_run(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def handler(event, context)\n    return event\n")
    (tmp_path / "also_broken.py").write_text("def handler(event, context):\n    return (\n")
    document = distribution(
        8000,
        min_ttl=-5,
        lambda_function_association=[
            {"event_type": "viewer-request", "handler": "broken.py:handler"}
        ],
    )
    document["distribution"]["default_cache_behavior"]["cache_everything"] = True
    api = {
        **distribution(8000)["distribution"]["default_cache_behavior"],
        "path_pattern": "/api/*",
        "lambda_function_association": [
            {"event_type": "origin-request", "handler": "also_broken.py:handler"}
        ],
    }
    document["distribution"]["ordered_cache_behavior"] = [api]
    result = run_cli("validate", "--config", str(write(tmp_path, document)))
    assert result.returncode == 2
    assert "(4 problem(s))" in result.stderr
    behavior = "distribution.default_cache_behavior"
    assert f"  {behavior}.min_ttl: " in result.stderr
    assert f"  {behavior}.cache_everything: unknown key" in result.stderr
    handler_line = f"  {behavior}.lambda_function_association[0].handler: "
    assert handler_line in result.stderr and "broken.py" in result.stderr
    assert "SyntaxError" in result.stderr or "invalid syntax" in result.stderr
    ordered = "  distribution.ordered_cache_behavior[0].lambda_function_association[0].handler: "
    assert ordered in result.stderr and "also_broken.py" in result.stderr


# -- invalidate --config: the admin API's address and token from the config ---------------------


def test_invalidate_finds_the_admin_api_and_its_token_in_the_config(tmp_path: Path) -> None:
    document = distribution(8000)
    document["edge"]["admin"] = {"port": free_port(), "token": "s3cret-token"}
    config = str(write(tmp_path, document))
    command = [sys.executable, "-m", "edgeproxy", "serve", "--config", config]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline().decode() for _ in range(2)]
        assert any("admin API on" in line for line in banner), banner
        done = run_cli("invalidate", "--config", config, "/img/*")
        assert done.returncode == 0, done.stderr
        assert "/img/*" in done.stdout
        # without the config, the token is missing: the admin API refuses (401)
        admin = f"http://127.0.0.1:{document['edge']['admin']['port']}"
        refused = run_cli("invalidate", "--admin", admin, "/img/*")
        assert refused.returncode == 1 and "401" in refused.stderr
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


def test_invalidate_with_a_config_without_admin_port_says_so(tmp_path: Path) -> None:
    document = distribution(8000)
    del document["edge"]["admin"]
    done = run_cli("invalidate", "--config", str(write(tmp_path, document)), "/a")
    assert done.returncode == 2
    assert "edge.admin.port: is not set" in done.stderr and "--admin" in done.stderr
