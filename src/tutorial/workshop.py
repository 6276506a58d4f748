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
ROOM_ENV = "WORKBOOK_ROOM"  # set (to 1) when a room of learners shares one server: heavy cells scale down


MAX_PREFIX = 32
# A tag that says where an id came from (`nb02-...`, `setup-check-...`, `bench-...`): the room (tutorial.room)
# reads an id's learner as everything before the first tag, so a learner's own name may not contain one.
TAG = re.compile(r"(?:^|-)(nb\d\d|setup-check|bench)(?=-|$)")


def learner() -> str:
    """The learner prefix: lower-case letters, digits and dashes, never empty. WORKBOOK_LEARNER, else the
    JupyterHub user, else the login name. A given name that gives no usable prefix (nothing left once cleaned,
    longer than 32 characters, or containing a tag such as `nb01`) is a `WorkbookError`: two learners would
    share a prefix, or the room could not tell whose a workflow is. Nothing has been sent at that point."""
    for variable in (LEARNER_ENV, HUB_USER_ENV):
        raw = os.environ.get(variable)
        if raw:
            return _prefix_of(raw, variable)
    from .errors import WorkbookError  # see _prefix_of

    try:
        return _prefix_of(_user_name(), "")
    except WorkbookError:  # an odd login name: nobody chose it, so the neutral default
        return "learner"


def _prefix_of(raw: str, variable: str) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")
    why = ("has no letters or digits" if not cleaned else
           f"is longer than {MAX_PREFIX} characters" if len(cleaned) > MAX_PREFIX else
           f"contains the tag '{TAG.search(cleaned).group(1)}' that ids use" if TAG.search(cleaned) else "")
    if why:
        from .errors import WorkbookError  # here, not at the top: the setup check imports this module before it
        # has checked that temporalio (which errors.py needs) is installed
        source = "the JupyterHub user name" if variable == HUB_USER_ENV else variable or "the login name"
        raise WorkbookError(f"{source} {raw[:40]!r} {why}, so it cannot be your learner prefix: set "
                            f"{LEARNER_ENV} to a short name of your own (letters, digits, dashes), e.g. "
                            f"%env {LEARNER_ENV}=ann in a cell, then run it again.")
    return cleaned


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


def in_a_room() -> bool:
    """True when WORKBOOK_ROOM is set to anything but 0/no/false (the instructor tells the room to set it)."""
    return os.environ.get(ROOM_ENV, "").strip().lower() not in ("", "0", "no", "false")


def sized(alone, room):
    """`alone` for a learner on their own server, `room` under WORKBOOK_ROOM: the bursts and measurements
    that would swamp a shared server use the smaller size, which still proves the cell's claim."""
    return room if in_a_room() else alone


def state_dir() -> Path:
    """Where the workbook keeps its files (server log, SQLite databases, exported histories)."""
    base = os.environ.get(STATE_DIR_ENV)
    path = Path(base) if base else Path(tempfile.gettempdir()) / f"temporal-workbook-{learner()}"
    path.mkdir(parents=True, exist_ok=True)
    return path
