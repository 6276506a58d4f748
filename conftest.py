"""Session-wide guard: no `temporal` process (nor worker process) started during the test run may outlive it.

Notebook kernels (nbval, the browser test, workshop-mode learners) and the tests' own servers all start dev
servers; each must stop with its owner. At the end of the session we wait briefly for stragglers, then fail
the run (and kill them) if any remain. With pytest-xdist the controller does this, after all its workers.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest


def _temporal_pids() -> set[int]:
    """Dev servers (`temporal`) and workers in their own process (`python -m tutorial.remote_worker`)."""
    found = set()
    for args in (["-x", "temporal"], ["-f", "-m tutorial.remote_worker"]):
        out = subprocess.run(["pgrep", *args], capture_output=True, text=True).stdout
        found |= {int(p) for p in out.split()}
    return found


def _parent(pid: int) -> int | None:
    try:
        return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


SESSION_ENV = "WORKBOOK_TEST_SESSION"


def _ours(pid: int, token: str) -> bool:
    """Started by this test session: the token we put in the environment is inherited by every process we
    start (kernels, subprocesses, JupyterLab) and so by every dev server they start."""
    try:
        return f"{SESSION_ENV}={token}".encode() in open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        return False


def _leaked(before: set[int], token: str) -> set[int]:
    """`temporal` processes this session started that are still alive: every owner (kernel, JupyterLab,
    subprocess, this pytest) has had its turn to stop its server by now, whoever its parent is."""
    return {pid for pid in _temporal_pids() - before if _ours(pid, token)}


def _is_xdist_worker(config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """The token goes into the environment before pytest-xdist starts its workers, so they inherit it."""
    if _is_xdist_worker(config):
        return
    config._temporal_before = _temporal_pids()
    os.environ[SESSION_ENV] = config._session_token = uuid.uuid4().hex


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Tests that share a file share a worker (nbval's cells must run in order in one kernel; a module's
    fixtures start once), unless a test names its own `xdist_group` (the browser test: one per notebook)."""
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def pytest_sessionfinish(session, exitstatus):
    if _is_xdist_worker(session.config):
        return  # the controller checks once every worker has stopped
    before = getattr(session.config, "_temporal_before", set())
    token = getattr(session.config, "_session_token", "")
    deadline = time.monotonic() + 15
    left = _leaked(before, token)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _leaked(before, token)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if left:
        if reporter:
            reporter.write_line(f"FAILED: temporal processes outlived the test run: {sorted(left)} "
                                "(killed now, with the processes that held them)", red=True)
        owners = {_parent(pid) for pid in left} - {None, 1, os.getpid()}
        subprocess.run(["kill", "-9", *map(str, left | owners)])
        session.exitstatus = 1
    elif reporter:
        reporter.write_line("no temporal process outlived the test run")
