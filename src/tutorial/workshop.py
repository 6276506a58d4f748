"""Workshop mode: many learners on one shared server must not collide.

Every workflow id and task queue the workbook creates goes through `scoped()`, which prefixes it with the
learner's name (``WORKBOOK_LEARNER``, default: the user name). Two learners running the same notebook against
one cluster therefore never see, signal or terminate each other's workflows.
"""

from __future__ import annotations

import getpass
import os
import re
import tempfile
import uuid
from pathlib import Path

LEARNER_ENV = "WORKBOOK_LEARNER"
HUB_USER_ENV = "JUPYTERHUB_USER"  # set by JupyterHub in every user's server: the learner's name by default
STATE_DIR_ENV = "WORKBOOK_STATE_DIR"


def learner() -> str:
    """The learner prefix: lower-case letters, digits and dashes, never empty. WORKBOOK_LEARNER, else the
    JupyterHub user, else the login name."""
    raw = os.environ.get(LEARNER_ENV) or os.environ.get(HUB_USER_ENV) or _user_name()
    cleaned = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    return cleaned[:32] or "learner"


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        return "learner"


def scoped(name: str) -> str:
    """`name` prefixed with the learner, e.g. ``alice-nb00-hello``. Idempotent."""
    prefix = learner() + "-"
    return name if name.startswith(prefix) else prefix + name


def unique(name: str) -> str:
    """A scoped name with a short random suffix, so a re-run cell never meets an old workflow."""
    return scoped(f"{name}-{uuid.uuid4().hex[:6]}")


def state_dir() -> Path:
    """Where the workbook keeps its files (server log, SQLite databases, exported histories)."""
    base = os.environ.get(STATE_DIR_ENV)
    path = Path(base) if base else Path(tempfile.gettempdir()) / f"temporal-workbook-{learner()}"
    path.mkdir(parents=True, exist_ok=True)
    return path
