"""``edgeproxy serve --workers N``: N worker processes share the viewer ports
(SO_REUSEPORT), each with its own cache; the parent runs the demo origin once and the
admin API, which fans every call out to the workers' own admin listeners, so an
invalidation reaches every worker's cache.

    parent ── demo origin (once) ── admin API (fan-out) ──┬── worker 1: edge + admin on :0
                                                          └── worker N: edge + admin on :0
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from edgeproxy.admin.fanout import WorkerAdmin, fanout_app
from edgeproxy.config.config_model import Config
from edgeproxy.config.loading import load_config
from edgeproxy.config.overrides import ConfigOverrides
from edgeproxy.config.sources import SourceOptions
from edgeproxy.errors import ListenerError
from edgeproxy.log_setup import LINE_FORMAT, configure_logs
from edgeproxy.origin.demo import demo_origin_app
from edgeproxy.runtime import runner, start_app, stop_on_signals, url_host
from edgeproxy.viewer.certs import cert_folder, shown_path

log = logging.getLogger("edgeproxy.workers")

_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 5.0
_ORPHAN_CHECK_S = 1.0


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker reports once it serves."""

    pid: int
    admin_port: int


async def serve_workers(
    paths: Sequence[Path],
    overrides: ConfigOverrides,
    count: int,
    options: SourceOptions | None = None,
    log_level: str = "INFO",
) -> None:
    """Run ``count`` workers until cancelled, then stop them by PID. Each worker loads
    ``paths`` (a later file overlaying an earlier one) with ``options`` as this process did,
    and logs as this process does (``log_level``, ``edge.logs``; the access log's header
    written once)."""
    options = options or SourceOptions()
    config = load_config(paths, overrides=overrides, options=options).config
    runners: list[Any] = []
    processes: list[multiprocessing.process.BaseProcess] = []
    stop_on_signals()  # then the workers are stopped by PID in the finally below
    try:
        overrides = await _shared_overrides(config, overrides, runners)
        infos = await _start_workers(list(paths), overrides, options, count, processes, log_level)
        admin = config.edge.admin
        workers = [WorkerAdmin(i.pid, i.admin_port, admin.token) for i in infos]
        if admin.port is not None:
            port = await start_app(
                runners, fanout_app(workers, admin.token), admin.host, admin.port, "admin"
            )
            print(f"edgeproxy: admin API on http://{url_host(admin.host)}:{port}", flush=True)
        host = url_host(config.edge.listeners.host)
        print(f"edgeproxy: {count} workers on http://{host}:{overrides.http_port}/", flush=True)
        if overrides.https_port is not None:
            ca = shown_path(cert_folder(config) / "ca.pem")
            print(
                f"edgeproxy: {count} workers on https://{host}:{overrides.https_port}/ (CA: {ca})",
                flush=True,
            )
        await asyncio.Event().wait()
    finally:
        _stop(processes)
        for runner in reversed(runners):
            await runner.cleanup()


async def _shared_overrides(
    config: Config, overrides: ConfigOverrides, runners: list[Any]
) -> ConfigOverrides:
    """Fix what every worker must share: the ports (a 0 becomes one free port) and the
    demo origin, started here once and named to the workers as their origin."""
    listeners = config.edge.listeners
    http_port = listeners.http_port or overrides.http_port or _free_port(listeners.host)
    https_port = listeners.https_port
    if https_port == 0:
        https_port = _free_port(listeners.host)
    origin_url = overrides.origin_url
    demo = config.edge.demo_origin
    if demo is not None and origin_url is None:
        app = demo_origin_app(config.base_dir / demo.root)
        port = await start_app(runners, app, demo.host, demo.port, "origin")
        origin_url = f"http://{url_host(demo.host)}:{port}"
        print(f"edgeproxy: demo origin on {origin_url}", flush=True)
    return dataclasses.replace(
        overrides, http_port=http_port, https_port=https_port, origin_url=origin_url
    )


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def _start_workers(
    paths: list[Path],
    overrides: ConfigOverrides,
    options: SourceOptions,
    count: int,
    processes: list[multiprocessing.process.BaseProcess],
    log_level: str,
) -> list[WorkerInfo]:
    context = multiprocessing.get_context("spawn")
    pipes: list[Connection] = []
    for _ in range(count):
        parent_end, child_end = context.Pipe(duplex=False)
        process = context.Process(
            target=worker_main,
            args=(paths, overrides, options, child_end, log_level),
            daemon=True,
        )
        process.start()
        processes.append(process)
        pipes.append(parent_end)
    loop = asyncio.get_running_loop()
    return [await loop.run_in_executor(None, _ready, pipe) for pipe in pipes]


def _ready(pipe: Connection) -> WorkerInfo:
    if not pipe.poll(_READY_TIMEOUT_S):
        raise RuntimeError("a worker did not start in time")
    info = pipe.recv()
    if isinstance(info, ListenerError):  # the shared viewer port is taken: said as serve says
        raise info
    if not isinstance(info, WorkerInfo):
        raise RuntimeError(f"a worker failed to start: {info}")
    return info


def _stop(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        if process.pid is not None and process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join(_STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()


# -- inside a worker -----------------------------------------------------------------------


def worker_main(
    paths: list[Path],
    overrides: ConfigOverrides,
    options: SourceOptions,
    ready: Connection,
    log_level: str = "INFO",
) -> None:
    """A worker process: the edge on the shared ports, its admin on a private port; it
    logs at the parent's level, where ``edge.logs`` says (its lines, not the header)."""
    logging.basicConfig(level=log_level, format=LINE_FORMAT)
    try:
        loaded = load_config(paths, overrides=overrides, options=options)
        config = _private_admin(loaded.config)
        configure_logs(config, header=False)
    except Exception as exc:  # reported to the parent, which refuses to start
        ready.send(f"{type(exc).__name__}: {exc}")
        return
    with runner() as loop_runner:
        try:
            loop_runner.run(_worker(config, ready))
        except ListenerError as exc:  # the parent reports it, once, and refuses to start
            ready.send(exc)


def _private_admin(config: Config) -> Config:
    admin = config.edge.admin.model_copy(update={"host": "127.0.0.1", "port": 0})
    edge = config.edge.model_copy(update={"admin": admin})
    return config.model_copy(update={"edge": edge})


async def _worker(config: Config, ready: Connection) -> None:
    from edgeproxy.runtime import running_edge, tune_collector

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running_edge(config, reuse_port=True) as running:
        ready.send(WorkerInfo(os.getpid(), running.ports["admin"]))
        tune_collector()
        watch = loop.create_task(_stop_when_orphaned(stop))
        await stop.wait()
        watch.cancel()


async def _stop_when_orphaned(stop: asyncio.Event) -> None:
    """A worker whose parent died (killed without a chance to stop it) stops too, rather
    than keep serving the port alone."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(_ORPHAN_CHECK_S)
    log.warning("the parent process is gone: worker %d stops", os.getpid())
    stop.set()
