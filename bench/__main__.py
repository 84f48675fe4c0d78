"""``python -m bench``: run the side-by-side benchmark (see bench/run.py)."""

from __future__ import annotations

import sys

from .run import main

sys.exit(main())
