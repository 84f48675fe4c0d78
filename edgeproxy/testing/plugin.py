"""The pytest plugin (entry point ``pytest11``: ``edgeproxy = "edgeproxy.testing.plugin"``):
the fixtures ``fake_origin`` and ``run_edge``. The only module of edgeproxy that imports
pytest; see docs/testing.md."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgeproxy.testing.edge import ConfigSource, LocalEdge, prepared_config
from edgeproxy.testing.loop import LoopThread
from edgeproxy.testing.origin import FakeOrigin

RunEdge = Callable[..., LocalEdge]


@pytest.fixture
def edgeproxy_loop() -> Iterator[LoopThread]:
    """The event loop (in a thread of its own) the test's edges and fake origin run on."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def fake_origin(edgeproxy_loop: LoopThread) -> Iterator[FakeOrigin]:
    """An origin on a free loopback port: ``fake_origin.route(path, status=…, headers=…,
    body=…, delay=…)`` scripts it, ``fake_origin.received`` is what it got."""
    origin = FakeOrigin(edgeproxy_loop).start()
    yield origin
    origin.stop()


@pytest.fixture
def run_edge(
    edgeproxy_loop: LoopThread,
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunEdge]:
    """``edge = run_edge(config, origin=fake_origin)``: an edge serving ``config`` (a file
    name, relative to pytest's rootdir unless absolute, or a dict whose relative paths start
    there; ``base_dir=`` says otherwise) on free loopback ports, stopped at teardown with
    every function runtime it started."""
    started: list[LocalEdge] = []

    def run(
        config: ConfigSource,
        *,
        origin: FakeOrigin | str | None = None,
        base_dir: Path | None = None,
        clock: Callable[[], float] | None = None,
    ) -> LocalEdge:
        work = tmp_path_factory.mktemp("edgeproxy")
        prepared = prepared_config(
            config, base_dir=base_dir or request.config.rootpath, work_dir=work, origin=origin
        )
        fake = origin if isinstance(origin, FakeOrigin) else None
        edge = LocalEdge(edgeproxy_loop, prepared, fake)
        started.append(edge)  # stopped even when start fails half-way
        return edge.start(clock)

    yield run
    for edge in reversed(started):
        edge.stop()
