"""Config hot reload: saving the config file changes what a running edge serves.

``ConfigReloader`` polls every ``--config`` file (mtime, size and inode, once a second: one
``stat`` call per file, no watcher thread or library; a Terraform folder is its ``.tf`` and
``.tfvars`` files and the folder itself, so adding a file counts). When one changed, the
files are loaded and checked exactly as at start (``ConfigSource.load``) and every handler
they name is loaded; then, in one step with no ``await`` in between, the edge's routes
(behaviors, origins, hooks, policies), custom error pages, default root object and the Host
names served (aliases) are replaced. Requests already under way finish with what they started with.

A save that does not load (bad YAML, a rule CloudFront would refuse, a handler that does not
import) is logged with every problem and its key path, and the running config stays; the next
save is tried again. Nothing here ever stops the server. Settings that belong to what was
started (listeners, admin API, cache size, ``edge.resolve``, geo, identity, TLS, geo
restriction) are logged as needing a restart when they change.

Handler files have their own reload, per call (``LoadedHandler.reload_if_changed``); a config
reload loads its handlers afresh (their globals start over).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgeproxy.config.config_model import Config
from edgeproxy.config.custom_error_pages import ErrorPages
from edgeproxy.config.loading import LoadedConfig, load_config
from edgeproxy.config.overrides import ConfigOverrides
from edgeproxy.errors import ConfigError, HandlerLoadError
from edgeproxy.functions.loader import FileStamp, file_stamp
from edgeproxy.pipeline import Edge
from edgeproxy.routes import Routes
from edgeproxy.viewer.request_checks import ServedHosts

log = logging.getLogger("edgeproxy.reload")

POLL_INTERVAL_S = 1.0

# edge: settings read once, when the edge started; the rest is swapped on reload.
# (edge.functions and edge.key_value_stores are read again by ``Routes``.)
_EDGE_APPLIED = frozenset({"handlers", "functions", "key_value_stores"})


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """Where a running edge's config comes from: the files to watch (every ``--config``, a
    later one overlaying an earlier one) and how to load them (with the same command-line
    overrides and source options as at start)."""

    paths: tuple[Path, ...]
    load: Callable[[], LoadedConfig]
    interval_s: float = POLL_INTERVAL_S

    @property
    def name(self) -> str:
        return ", ".join(map(str, self.paths))


def config_source(
    paths: Path | Sequence[Path],
    overrides: ConfigOverrides | None = None,
    interval_s: float = POLL_INTERVAL_S,
) -> ConfigSource:
    """A source that loads ``paths`` with ``overrides`` and logs the config's warnings."""
    watched = (paths,) if isinstance(paths, Path) else tuple(paths)

    def load() -> LoadedConfig:
        loaded = load_config(watched, overrides=overrides)
        for warning in loaded.warnings:
            log.warning("%s", warning)
        return loaded

    return ConfigSource(watched, load, interval_s)


Stamps = tuple[tuple[Path, FileStamp], ...]


def stamps(paths: Sequence[Path]) -> Stamps:
    """The stamp of every file the config is read from: each path, and for a folder (a
    Terraform configuration) each ``.tf``/``.tfvars`` file in it."""
    files: list[Path] = []
    for path in paths:
        files.append(path)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".tf", ".tfvars"))
    return tuple((file, file_stamp(file)) for file in files)


class ConfigReloader:
    """Watches ``source.path`` and swaps a new config into ``edge`` when it changes.

    ``adjust`` is applied to every config loaded (the runtime's own overrides, e.g. the demo
    origin's port); ``config`` is the one being served."""

    def __init__(
        self,
        edge: Edge,
        source: ConfigSource,
        config: Config,
        adjust: Callable[[Config], Config] = lambda config: config,
    ) -> None:
        self.edge = edge
        self.source = source
        self.config = config
        self.reloads = 0  # successful swaps
        self.failures = 0  # saves that did not load
        self._adjust = adjust
        self._stamp: Stamps = stamps(source.paths)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> bool | None:
        """Reload if a file changed since last looked at: True swapped, False kept the
        running config, None nothing changed."""
        stamp = stamps(self.source.paths)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        return await self.reload()

    async def reload(self) -> bool:
        """Load the file now; swap it in when it loads, else log why and keep serving."""
        try:
            # Off the loop: reading, checking and importing handlers may take a while.
            config = self._adjust((await asyncio.to_thread(self.source.load)).config)
            routes = await asyncio.to_thread(Routes, config)
        except Exception as exc:  # whatever a save holds, the edge keeps serving
            self.failures += 1
            _log_failure(self.source.name, exc)
            return False
        self._swap(config, routes)
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.source.interval_s)
            await self.check()

    def _swap(self, config: Config, routes: Routes) -> None:
        dist = config.distribution
        # One step, no await: a request sees either the old config or the new one.
        self.edge.routes = routes
        self.edge.error_pages = ErrorPages(dist.custom_error_response)
        self.edge.misses.default_root_object = dist.default_root_object
        self.edge.hosts = ServedHosts.from_config(config)
        previous, self.config = self.config, config
        self.reloads += 1
        log.info("reloaded %s: %d cache behaviors", self.source.name, len(routes.routes))
        for name in needs_restart(previous, config):
            log.warning("%s changed: it takes effect after a restart", name)


def needs_restart(before: Config, after: Config) -> list[str]:
    """The settings that differ but were only read when the edge started."""
    changed = [
        f"edge.{name}"
        for name in type(before.edge).model_fields
        # every field of the edge model, by name: a field added later is compared too
        if name not in _EDGE_APPLIED and getattr(before.edge, name) != getattr(after.edge, name)
    ]
    if before.distribution.restrictions != after.distribution.restrictions:
        changed.append("distribution.restrictions")
    return changed


def _log_failure(path: str, exc: Exception) -> None:
    keep = "the running config stays in use"
    if isinstance(exc, ConfigError):
        log.error("%s does not load (%d problem(s)); %s:", path, len(exc.problems), keep)
        for key, message in exc.problems:
            log.error("  %s: %s", key, message)
    elif isinstance(exc, HandlerLoadError | OSError):
        log.error("%s does not load; %s: %s", path, keep, exc)
    else:
        log.exception("%s does not load; %s", path, keep)
