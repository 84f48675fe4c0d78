"""A staging suite for the demo distribution (config/distribution.yaml), written as a user of
edgeproxy would: only the pytest plugin's fixtures (run_edge, fake_origin) and invoke().

Run from the project's root: ``pytest examples/tests`` (``make test`` does)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edgeproxy.testing import FakeOrigin, LocalEdge

CONFIG = "config/distribution.yaml"  # relative to pytest's rootdir, the project's root


@pytest.fixture
def origin(fake_origin: FakeOrigin) -> FakeOrigin:
    """The application behind the distribution: every path a cacheable page."""
    return fake_origin.route("*", headers={"Cache-Control": "max-age=60"}, body="origin page")


@pytest.fixture
def edge(run_edge: Callable[..., LocalEdge], origin: FakeOrigin) -> LocalEdge:
    """The demo distribution, its origin replaced by the fake one."""
    return run_edge(CONFIG, origin=origin)
