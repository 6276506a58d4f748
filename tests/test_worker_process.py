"""A worker in its own OS process: it polls, reports its loads and cache, can be killed for real or stopped
gracefully, refuses a second kill with one line, and never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import temporal_pids  # noqa: F401 - the session guard checks temporal processes

from tutorial import entity_updates as eu
from tutorial.errors import WorkbookError
from tutorial.worker_process import WorkerProcess
from tutorial.workflows.update_account import UpdateAccount
from tutorial.workshop import unique

SPEC = ["tutorial.workflows.update_account:WORKFLOWS"]
ACTIVITIES = ["tutorial.workflows.update_account:ACTIVITIES"]


def test_it_runs_workflows_reports_its_cache_and_dies_by_sigkill(run, client):
    b = run(WorkerProcess(unique("test-wp"), SPEC, ACTIVITIES).start())
    try:
        assert b.running and b.identity and f"pid{b.pid}" in b.identity
        balance, handle = run(eu.deposit_with_start(client, unique("wp-acct"), 10, b.task_queue))
        assert balance == 10
        report = run(b.ask())
        assert handle.id in report["cached"] and report["running"] is True
        assert [load.workflow_id for load in b.loads] == [handle.id] and b.replays() == 0
        run(b.kill())
        assert not b.running and b.exit_code == -signal.SIGKILL and "SIGKILL" in b.status()
        with pytest.raises(WorkbookError, match="no running worker B to kill"):
            run(b.kill())
        with pytest.raises(WorkbookError, match="start it first"):
            run(b.ask())
    finally:
        if b.running:
            run(b.kill())
    run(client.get_workflow_handle(handle.id).terminate("test over"))


def test_a_graceful_stop_exits_cleanly(run, client):
    b = run(WorkerProcess(unique("test-wp-stop"), SPEC).start())
    run(b.stop())
    assert b.exit_code == 0 and "exited (0)" in b.status()
    with pytest.raises(WorkbookError, match="no running worker B to stop"):
        run(b.stop())


def test_a_bad_workflow_spec_gets_one_line(run, client):
    b = WorkerProcess(unique("test-wp-bad"), ["tutorial.workflows.no_such_module:WORKFLOWS"])
    with pytest.raises(WorkbookError) as err:
        run(b.start())
    assert "did not start" in str(err.value) and "no_such_module" in str(err.value) and "\n" not in str(err.value)
    assert not b.running


def test_it_dies_with_its_parent_even_when_the_parent_is_sigkilled(tmp_path):
    from tutorial import server

    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, os, sys
        os.environ["TEMPORAL_ADDRESS"] = {server.server_info().address!r}
        from tutorial import server
        from tutorial.worker_process import WorkerProcess
        async def main():
            await server.connect(quiet=True)
            b = await WorkerProcess("orphan-test", {SPEC!r}).start()
            print(b.pid, flush=True)
            await asyncio.sleep(3600)
        asyncio.run(main())
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}") and \
            "zombie" not in open(f"/proc/{child}/status").read().lower():
        time.sleep(0.2)
    alive = os.path.exists(f"/proc/{child}") and "zombie" not in open(f"/proc/{child}/status").read().lower()
    assert not alive, "worker B outlived its parent"
