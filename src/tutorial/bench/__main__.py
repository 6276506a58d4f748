"""`python -m tutorial.bench`: the command (see `cli`)."""

import os
import sys

# the command draws its chart into a file, never a window: choose matplotlib's file backend before it loads
os.environ.setdefault("MPLBACKEND", "Agg")

from .cli import main  # noqa: E402 - after the backend is chosen

sys.exit(main())
