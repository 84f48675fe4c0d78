"""`edgeproxy serve --workers 2`: two processes share the port, each with its own cache;
the admin API fans out, so one invalidation reaches both caches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import yaml
from test_demo import _get_when_up, demo_copy


def test_two_workers_share_the_port_and_invalidations_reach_both(tmp_path: Path):
    config = demo_copy(tmp_path)
    edge = yaml.safe_load(config.read_text())["edge"]
    port, admin = edge["listeners"]["http_port"], edge["admin"]["port"]
    command = [sys.executable, "-m", "edgeproxy.cli", "--log-level", "WARNING", "serve"]
    command += ["--config", str(config), "--workers", "2"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _get_when_up(f"http://127.0.0.1:{admin}/stats", process)
        for _ in range(40):  # a new connection each time: the kernel spreads them
            assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        stats = httpx.get(f"http://127.0.0.1:{admin}/stats").json()
        workers = stats["workers"]
        assert len(workers) == 2
        assert all(w["cache"]["stores"] == 1 for w in workers), workers
        assert stats["cache"]["stores"] == 2
        assert sum(stats["responses"].values()) >= 40
        # /metrics sums the workers' counters: every request, both workers' objects.
        metrics = httpx.get(f"http://127.0.0.1:{admin}/metrics").text
        requests = [
            line for line in metrics.splitlines() if line.startswith("edgeproxy_requests_total")
        ]
        assert sum(float(line.rsplit(" ", 1)[1]) for line in requests) >= 40, metrics
        assert "edgeproxy_cache_objects 2.0" in metrics.splitlines()

        invalidation = httpx.post(
            f"http://127.0.0.1:{admin}/invalidations", json={"paths": ["/*"]}
        ).json()
        assert invalidation["workers"] == 2
        after = httpx.get(f"http://127.0.0.1:{admin}/stats").json()["workers"]
        assert all(w["cache"]["entries"] == 0 for w in after), after
        listed = httpx.get(f"http://127.0.0.1:{admin}/invalidations").json()
        assert [i["id"] for i in listed] == [invalidation["id"]]
    finally:
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=20)
    assert "2 workers on" in log.read_text()


def test_sigterm_stops_the_parent_and_every_worker(tmp_path: Path):
    config = demo_copy(tmp_path)
    edge = yaml.safe_load(config.read_text())["edge"]
    admin = edge["admin"]["port"]
    command = [sys.executable, "-m", "edgeproxy.cli", "--log-level", "WARNING", "serve"]
    command += ["--config", str(config), "--workers", "2"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        _get_when_up(f"http://127.0.0.1:{admin}/stats", process)
        pids = [w["pid"] for w in httpx.get(f"http://127.0.0.1:{admin}/stats").json()["workers"]]
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid), f"worker {pid} still runs"


def _zombie(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" in status


def test_workers_serve_every_config_file_given(tmp_path: Path):
    """`--config A --config B --workers 2`: each worker serves A overlaid by B, as one
    process would (here B adds an alias: a Host CloudFront answers only when it is one of the
    distribution's names, DG CNAMEs.html)."""
    config = demo_copy(tmp_path)
    edge = yaml.safe_load(config.read_text())["edge"]
    port, admin = edge["listeners"]["http_port"], edge["admin"]["port"]
    later = tmp_path / "aliases.yaml"
    later.write_text(yaml.safe_dump({"distribution": {"aliases": ["workers.example.com"]}}))
    command = [sys.executable, "-m", "edgeproxy.cli", "--log-level", "WARNING", "serve"]
    command += ["--config", str(config), "--config", str(later), "--workers", "2"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        _get_when_up(f"http://127.0.0.1:{admin}/stats", process)
        for _ in range(10):  # new connections: both workers answer some
            aliased = httpx.get(
                f"http://127.0.0.1:{port}/", headers={"Host": "workers.example.com"}
            )
            assert aliased.status_code == 200
        stats = httpx.get(f"http://127.0.0.1:{admin}/stats").json()
        assert len(stats["workers"]) == 2
        unknown = httpx.get(f"http://127.0.0.1:{port}/", headers={"Host": "other.example.com"})
        assert unknown.status_code == 403
    finally:
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=20)
