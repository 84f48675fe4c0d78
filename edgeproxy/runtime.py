"""The composition root: builds an ``Edge`` from a ``Config`` and runs its listeners (the
demo origin, the viewer listeners, the admin API) until stopped. Used by the CLI and by the
flow tests, so both exercise exactly the same wiring."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from aiohttp import web

from edgeproxy.admin.api import admin_app
from edgeproxy.cache.disk import DiskTier
from edgeproxy.cache.key import CacheKey
from edgeproxy.cache.store import CacheStore
from edgeproxy.config.config_model import Config
from edgeproxy.config.custom_error_pages import ErrorPages
from edgeproxy.config.overrides import ConfigOverrides, apply_overrides
from edgeproxy.errors import ListenerError
from edgeproxy.functions.events import EventMeta
from edgeproxy.functions.hooks import HookRunner
from edgeproxy.origin.client import OriginClient
from edgeproxy.origin.demo import demo_origin_app
from edgeproxy.pipeline import Edge, EdgeIdentity
from edgeproxy.reload import ConfigReloader, ConfigSource
from edgeproxy.routes import Routes
from edgeproxy.server.listeners import Listener, ViewerServer
from edgeproxy.viewer.certs import cert_folder, listener_context, shown_path
from edgeproxy.viewer.cloudfront_headers import names_device_headers, warm_device_parser
from edgeproxy.viewer.geo import GeoLocator
from edgeproxy.viewer.request_checks import ServedHosts

if TYPE_CHECKING:
    from edgeproxy.cache.regional import RegionalTier

log = logging.getLogger("edgeproxy")


@functools.cache  # the choice is made, and a missing uvloop reported, once per process
def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's event loop where it is installed (faster), else asyncio's own (uvloop does not
    exist for Windows, for one): the edge behaves the same on both."""
    try:
        import uvloop
    except ImportError:
        log.warning("uvloop is not installed: the edge runs on asyncio's own event loop (slower)")
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def runner() -> asyncio.Runner:
    """An asyncio runner on ``loop_factory()``'s loop (uvloop.install() is deprecated)."""
    return asyncio.Runner(loop_factory=loop_factory())


def build_edge(
    config: Config, *, clock: Callable[[], float] = time.time, use_dns: bool = True
) -> Edge:
    """Everything resolved once: routes (handlers loaded), cache, hooks, origin client."""
    edge_settings = config.edge
    meta = EventMeta(edge_settings.distribution_domain_name, edge_settings.distribution_id)
    dist = config.distribution
    routes = Routes(config)
    if any(names_device_headers(route.cf_header_names) for route in routes.routes):
        warm_device_parser()  # at start, not on a viewer's first request
    return Edge(
        routes,
        CacheStore(
            edge_settings.cache.max_bytes,
            edge_settings.cache.max_object_bytes,
            clock=clock,
            disk=disk_tier(config),
        ),
        HookRunner(max_executions=edge_settings.handlers.max_concurrent_executions),
        # Bodies the cache would refuse anyway are streamed through, never held whole.
        OriginClient(
            edge_settings.resolve,
            use_dns=use_dns,
            max_body=edge_settings.cache.max_object_bytes,
        ),
        EdgeIdentity.create(edge_settings.pop, meta, edge_settings.listeners.https_port),
        GeoLocator.from_settings(edge_settings.geo, dist.restrictions.geo_restriction),
        trust_viewer_headers=edge_settings.geo.trust_viewer_headers,
        default_root_object=config.distribution.default_root_object,
        error_pages=ErrorPages(config.distribution.custom_error_response),
        hosts=ServedHosts.from_config(config),
        clock=clock,
        regional=regional_tier(config, clock),
    )


def regional_tier(config: Config, clock: Callable[[], float]) -> RegionalTier | None:
    """The tier the PoPs of this distribution share (``edge.regional_cache``), or None."""
    settings = config.edge.regional_cache
    if settings is None:
        return None
    from edgeproxy.cache.regional import RegionalTier  # the redis client: only when used

    return RegionalTier(
        settings.redis,
        config.edge.distribution_id,
        timeout=settings.timeout,
        max_object_bytes=settings.max_object_bytes,
        lock_timeout=settings.lock_timeout,
        clock=clock,
    )


def disk_tier(config: Config) -> Callable[[Callable[[CacheKey], None]], DiskTier] | None:
    """How the cache opens its disk tier (``edge.cache.disk``), or None when it is off."""
    settings = config.edge.cache.disk
    if not settings.enabled:
        return None
    folder = config.path(settings.folder)
    return functools.partial(DiskTier, folder, settings.max_bytes)


@dataclass
class RunningEdge:
    """What ``running_edge`` started, with the ports actually bound."""

    edge: Edge
    config: Config
    ports: dict[str, int] = field(default_factory=dict)  # http, https, admin, origin
    demo_origin: web.Application | None = None
    reloader: ConfigReloader | None = None  # watching the config file (``reload=``)

    def url(self, path: str = "/", scheme: str = "http") -> str:
        host = self.config.edge.listeners.host
        return f"{scheme}://{url_host(host)}:{self.ports[scheme]}{path}"

    @property
    def admin_url(self) -> str:
        return f"http://{url_host(self.config.edge.admin.host)}:{self.ports['admin']}"


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@asynccontextmanager
async def running_edge(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    use_dns: bool = True,
    http_port: int = 0,
    reuse_port: bool = False,
    reload: ConfigSource | None = None,
) -> AsyncIterator[RunningEdge]:
    """Start the demo origin (when configured), the edge and its admin API; stop them all
    on exit. ``http_port`` is used when the config names no listener port; ``reuse_port``
    lets worker processes share the viewer ports; ``reload`` watches the config file and
    swaps in each save that loads (``reload.ConfigReloader``)."""
    runners: list[web.AppRunner] = []
    origin_port = None
    demo_app = None
    demo_overrides = ConfigOverrides()
    try:
        if config.edge.demo_origin is not None:
            demo = config.edge.demo_origin
            demo_app = demo_origin_app(config.base_dir / demo.root)
            origin_port = await start_app(runners, demo_app, demo.host, demo.port, "origin")
            demo_overrides = ConfigOverrides(
                origin_url=f"http://{url_host(demo.host)}:{origin_port}"
            )
            config = apply_overrides(config, demo_overrides)
        edge = build_edge(config, clock=clock, use_dns=use_dns)
        edge.start()
        running = RunningEdge(edge, config, demo_origin=demo_app)
        if origin_port is not None:
            running.ports["origin"] = origin_port
        server = ViewerServer(edge)
        for listener in _listeners(config, http_port):  # HTTPS first, then HTTP
            with binding(listener.scheme, listener.host, listener.port):
                await server.start([replace(listener, reuse_port=reuse_port)])
            if listener.scheme == "https":  # redirects name the port actually bound
                edge.identity = replace(edge.identity, https_port=server.bound["https"])
        running.ports.update(server.bound)
        admin = config.edge.admin
        if admin.port is not None:
            running.ports["admin"] = await start_app(
                runners, admin_app(edge, admin.token), admin.host, admin.port, "admin"
            )
        if reload is not None:
            running.reloader = ConfigReloader(
                edge, reload, config, lambda new: apply_overrides(new, demo_overrides)
            )
            running.reloader.start()
        try:
            yield running
        finally:
            if running.reloader is not None:
                await running.reloader.stop()
            await server.stop()
            await edge.close()
            await edge.hooks.close()
            await edge.origin.close()
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


def _listeners(config: Config, http_port: int) -> list[Listener]:
    """The listeners the config names; none named → HTTP alone on ``http_port``. HTTPS comes
    first, its certificates made (or reused) before any port accepts a connection."""
    settings = config.edge.listeners
    port = settings.http_port if settings.http_port is not None else http_port
    listeners = [Listener(settings.host, port, "http")]
    if settings.https_port is not None:
        tls = listener_context(config)
        listeners.insert(0, Listener(settings.host, settings.https_port, "https", tls))
    return listeners


async def start_app(
    runners: list[web.AppRunner], app: web.Application, host: str, port: int, listener: str
) -> int:
    """Serve ``app`` on host:port; ``listener`` is its row of ``LISTENERS``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    runners.append(runner)
    site = web.TCPSite(runner, host, port)
    with binding(listener, host, port):
        await site.start()
    return int(runner.addresses[-1][1])


# Each listener, and the flag or config key that moves it: what a port that cannot be bound
# is reported with (ListenerError; the CLI prints it as one line and exits 2).
LISTENERS: dict[str, tuple[str, str]] = {
    "http": ("the viewer HTTP listener", "--port or edge.listeners.http_port"),
    "https": ("the viewer HTTPS listener", "--https-port or edge.listeners.https_port"),
    "admin": ("the admin API", "--admin-port or edge.admin.port"),
    "origin": ("the demo origin", "--origin-port or edge.demo_origin.port"),
}


@contextmanager
def binding(listener: str, host: str, port: int) -> Iterator[None]:
    """An OSError while binding becomes a ListenerError that says which, where and how to
    move it."""
    try:
        yield
    except OSError as exc:
        what, moved_by = LISTENERS[listener]
        why = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        address = f"{url_host(host)}:{port}"
        raise ListenerError(
            f"{what} cannot listen on {address} ({why}): move it with {moved_by}"
        ) from None


async def serve_forever(
    config: Config, http_port: int, *, reload: ConfigSource | None = None
) -> None:
    """Run until cancelled (Ctrl-C / SIGTERM), printing where everything listens; with
    ``reload``, saving the config file reloads it."""
    stop_on_signals()
    async with running_edge(config, http_port=http_port, reload=reload) as running:
        _announce(running)
        tune_collector()
        await asyncio.Event().wait()


# The young generation's size for a serving edge: collected every 10,000 allocations of
# container objects, not Python's default 700 (the older generations keep their ratios).
COLLECTOR_THRESHOLDS = (10_000, 10, 10)


def tune_collector() -> None:
    """For a process that serves (``edgeproxy serve`` and its workers, never an edge embedded
    in someone's process): what was loaded to start (modules, config, functions; about
    70,000 objects) is frozen out of every collection, and young objects are collected
    less often. Every miss leaves objects in the cache, so under Python's defaults the
    collector walked the whole heap again and again: on a loaded miss path it took 15-17 %
    of the edge's CPU, with these settings about 5 % (docs/performance.md, "The garbage
    collector"). Cycles are still collected, in batches of at most 10,000 allocations."""
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def stop_on_signals() -> None:
    """Ctrl-C and SIGTERM cancel the running task, so every ``finally`` runs: listeners
    closed, handler and worker processes stopped by PID. (Both through the loop: once it
    handles one signal itself, uvloop no longer delivers the other to Python's handler.)"""
    task = asyncio.current_task()
    if task is None:
        return
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)


def _announce(running: RunningEdge) -> None:
    print(f"edgeproxy: edge on {running.url('/')}", flush=True)
    if "https" in running.ports:
        ca = shown_path(cert_folder(running.config) / "ca.pem")
        print(f"edgeproxy: edge on {running.url('/', 'https')} (CA: {ca})", flush=True)
    if "origin" in running.ports:
        print(f"edgeproxy: demo origin on http://127.0.0.1:{running.ports['origin']}", flush=True)
    if "admin" in running.ports:
        print(f"edgeproxy: admin API on {running.admin_url}", flush=True)
