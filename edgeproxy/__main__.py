"""``python -m edgeproxy``: the same as the ``edgeproxy`` command."""

import sys

from edgeproxy.cli import main

sys.exit(main())
