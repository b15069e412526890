"""``python -m mnaszoo``: the command-line interface (see :mod:`mnaszoo.cli.main`)."""

from __future__ import annotations

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
