"""The servers under test, started the same way: on 127.0.0.1 at a free port, pinned to the
server CPUs, in their own process group, in a private work directory, as the current user.

* edgeproxy: ``.venv/bin/edgeproxy serve --config bench/config/bench.yaml`` (``--workers N``
  for the scale-out variant), log level WARNING so no access line is written per request;
  the default-config variant is started as a user starts it (log level INFO, the access log
  on), its stderr in a file of the run's temporary directory.
* nginx: bench/nginx.conf rendered into the work directory, ``daemon off``, 1 worker.
* Varnish: bench/default.vcl rendered, ``varnishd -F -j none``, malloc storage, one thread pool.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .procs import HOST, Proc, free_port, start, wait_for_port

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# The checkout's venv, as `make bench` makes it; else the venv of the interpreter running the
# harness (a worktree sharing another checkout's venv, with PYTHONPATH naming the worktree).
VENV_BIN = REPO / ".venv" / "bin"
if not (VENV_BIN / "edgeproxy").exists():
    VENV_BIN = Path(sys.executable).parent
CACHE_BYTES = 2 * 1024**3  # every contender may hold 2 GiB: nothing is evicted during a run
VARNISH_THREADS = (300, 1000)  # min, max of the one pool: room for 200 concurrent viewers

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


class TemplateError(ValueError):
    """A template names a value that was not given."""


def render(template: str, values: dict[str, str]) -> str:
    """``template`` with every ``{{name}}`` replaced by ``values[name]``."""

    def value(match: re.Match[str]) -> str:
        if match[1] not in values:
            raise TemplateError(f"no value for {{{{{match[1]}}}}}")
        return values[match[1]]

    return _PLACEHOLDER.sub(value, template)


@dataclass(frozen=True, slots=True)
class Contender:
    key: str  # column name in the table, or the variant's name in the samples
    kind: str  # edgeproxy | nginx | varnish
    workers: int = 1
    # A variant serves only the load cases that name it (LoadCase.variants); it has no
    # column of its own, takes no part in the collapsing burst or the memory phase.
    variant: bool = False
    access_log: bool = False  # started as `edgeproxy serve` defaults it: INFO, one line each
    cpus: str | None = None  # its own server CPUs instead of BenchEnv.server_cpus


@dataclass(frozen=True, slots=True)
class BenchEnv:
    """Where and how every contender runs."""

    workdir: Path
    origin_port: int
    server_cpus: str
    edgeproxy: Path = VENV_BIN / "edgeproxy"
    nginx: str = "nginx"
    varnishd: str = "varnishd"


@dataclass
class Running:
    contender: Contender
    port: int
    proc: Proc
    cache_dir: Path | None = None  # nginx keeps cached bodies in files here (on tmpfs)
    notes: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def memory_bytes(self) -> int:
        """RSS of the server's processes, plus nginx's cache files (they live in RAM)."""
        files = _disk_usage(self.cache_dir) if self.cache_dir is not None else 0
        return self.proc.rss_bytes() + files

    def stop(self) -> None:
        self.proc.stop()
        if self.cache_dir is not None:  # give the memory back before the next contender
            shutil.rmtree(self.cache_dir, ignore_errors=True)


def launch(contender: Contender, env: BenchEnv) -> Running:
    """Start ``contender`` and wait until it listens; stopped by the caller (``proc.stop``)."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix=f"{contender.key}-", dir=env.workdir))
    starter = _STARTERS[contender.kind]
    running = starter(contender, env, workdir, port)
    try:
        wait_for_port(running.proc, port)
    except BaseException:
        running.stop()
        raise
    return running


def server_cpus(contender: Contender, env: BenchEnv) -> str:
    return contender.cpus or env.server_cpus


def edgeproxy_supports_workers(edgeproxy: Path) -> bool:
    """Whether ``edgeproxy serve`` takes ``--workers`` (read from its --help)."""
    completed = subprocess.run(
        [str(edgeproxy), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    return "--workers" in completed.stdout


def edgeproxy_command(contender: Contender, env: BenchEnv, port: int) -> list[str]:
    cmd = [str(env.edgeproxy)]
    if not contender.access_log:
        cmd += ["--log-level", "WARNING"]
    cmd.append("serve")
    cmd += ["--config", str(BENCH_DIR / "config" / "bench.yaml"), "--port", str(port)]
    cmd += ["--origin", f"http://{HOST}:{env.origin_port}"]
    if contender.workers != 1:
        cmd += ["--workers", str(contender.workers)]
    return cmd


def _start_edgeproxy(contender: Contender, env: BenchEnv, workdir: Path, port: int) -> Running:
    cmd = edgeproxy_command(contender, env, port)
    # stdout and stderr (the access log of the default-config variant) go to this file, in
    # the run's temporary directory (on tmpfs when there is one)
    proc = start(contender.key, cmd, workdir / "edgeproxy.log", server_cpus(contender, env),
                 cwd=REPO)
    return Running(contender, port, proc)


def nginx_values(workdir: Path, cache_dir: Path, port: int, origin_port: int) -> dict[str, str]:
    user = ""
    if os.geteuid() == 0:  # workers would otherwise drop to "nobody" and lose the cache dir
        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
    return {
        "user_directive": user,
        "workdir": str(workdir),
        "cache_dir": str(cache_dir),
        "port": str(port),
        "origin_port": str(origin_port),
    }


def _start_nginx(contender: Contender, env: BenchEnv, workdir: Path, port: int) -> Running:
    cache_dir = workdir / "cache"  # the run's directory is on tmpfs when there is one
    values = nginx_values(workdir, cache_dir, port, env.origin_port)
    conf = workdir / "nginx.conf"
    conf.write_text(render((BENCH_DIR / "nginx.conf").read_text(), values))
    cmd = [env.nginx, "-p", str(workdir), "-e", str(workdir / "nginx-error.log")]
    cmd += ["-c", str(conf), "-g", "daemon off;"]
    proc = start(contender.key, cmd, workdir / "nginx.out", server_cpus(contender, env))
    return Running(contender, port, proc, cache_dir=cache_dir)


def varnish_command(env: BenchEnv, workdir: Path, vcl: Path, port: int) -> list[str]:
    low, high = VARNISH_THREADS
    cmd = [env.varnishd, "-F", "-j", "none", "-n", str(workdir / "varnish")]
    cmd += ["-a", f"{HOST}:{port}", "-f", str(vcl), "-T", "none"]
    cmd += ["-s", f"malloc,{CACHE_BYTES // 1024**2}m"]
    cmd += ["-p", "thread_pools=1", "-p", f"thread_pool_min={low}", "-p", f"thread_pool_max={high}"]
    return cmd


def _start_varnish(contender: Contender, env: BenchEnv, workdir: Path, port: int) -> Running:
    vcl = workdir / "default.vcl"
    values = {"origin_port": str(env.origin_port)}
    vcl.write_text(render((BENCH_DIR / "default.vcl").read_text(), values))
    cmd = varnish_command(env, workdir, vcl, port)
    proc = start(contender.key, cmd, workdir / "varnishd.log", server_cpus(contender, env))
    return Running(contender, port, proc)


_STARTERS = {"edgeproxy": _start_edgeproxy, "nginx": _start_nginx, "varnish": _start_varnish}


def _disk_usage(root: Path) -> int:
    """Bytes allocated to the files under ``root`` (blocks, as tmpfs charges RAM)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                continue
    return total
