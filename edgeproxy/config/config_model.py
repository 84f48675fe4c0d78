"""The model of a whole config file: ``distribution:`` (``config/distribution.py``) and
``edge:`` (``config/edge_settings.py``), with the folder its relative paths start from."""

from __future__ import annotations

from pathlib import Path

from edgeproxy.config.distribution import Distribution
from edgeproxy.config.edge_settings import EdgeSettings
from edgeproxy.config.types import FrozenModel


class Config(FrozenModel):
    distribution: Distribution
    edge: EdgeSettings = EdgeSettings()
    base_dir: Path = Path(".")  # the folder of the config file; relative paths start here

    def path(self, relative: str) -> Path:
        """A path named in the config (handler file, demo root, cert dir), made absolute."""
        return self.base_dir / relative
