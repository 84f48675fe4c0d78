"""`serve --workers 2`: the parent's admin API serves the timeline UI and relays the workers'
exchanges: the live stream of both, one exchange's detail and its body from the worker that
holds it (admin/fanout.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import yaml
from test_demo import _get_when_up, demo_copy


def test_the_parent_relays_the_stream_and_finds_each_exchange(tmp_path: Path):
    config = demo_copy(tmp_path)
    edge = yaml.safe_load(config.read_text())["edge"]
    port, admin = edge["listeners"]["http_port"], edge["admin"]["port"]
    command = [sys.executable, "-m", "edgeproxy.cli", "--log-level", "WARNING", "serve"]
    command += ["--config", str(config), "--workers", "2"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{admin}"
    try:
        _get_when_up(f"{base}/stats", process)
        assert "text/html" in httpx.get(f"{base}/").headers["content-type"]
        seen: list[dict[str, object]] = []
        with httpx.stream("GET", f"{base}/exchanges/stream", timeout=10) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "retry: 1000"
            for _ in range(8):  # new connections: the kernel spreads them over both workers
                httpx.get(f"http://127.0.0.1:{port}/index.html")
            for line in lines:
                if line.startswith("data: "):
                    seen.append(json.loads(line.removeprefix("data: ")))
                if len(seen) == 8:
                    break
        for record in seen:
            found = httpx.get(f"{base}/exchanges/{record['id']}")
            assert found.status_code == 200 and found.json()["uri"] == "/index.html"
            body = httpx.get(base + found.json()["response"]["body_url"])
            assert body.headers["content-disposition"].startswith("attachment")
            assert body.content
        assert httpx.get(f"{base}/exchanges/nope").status_code == 404
    finally:
        os.kill(process.pid, signal.SIGINT)
        process.wait(timeout=20)
