"""Workshop mode, proven: two learners run the same notebook at the same time against one shared server.

Each learner's kernel gets its own WORKBOOK_LEARNER; both point TEMPORAL_ADDRESS at one server (as a room
points at the instructor's cluster). Both notebooks must pass, and every workflow on the server must belong
to exactly one learner, on that learner's own task queues.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tutorial import server

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.full  # two learners at once: the full suite
NOTEBOOK = ROOT / "notebooks" / "00_how_temporal_runs_your_code.ipynb"


@pytest.fixture(scope="module")
def shared_server(run):
    """A server of its own, started like the instructor's cluster: the learners only get its address."""
    cluster = server.EmbeddedServer()
    info = run(cluster.start())
    yield info
    cluster.stop()


def test_two_learners_share_one_server_without_collisions(run, shared_server, tmp_path):
    processes = {}
    for learner in ("ann", "bob"):
        env = dict(os.environ, TEMPORAL_ADDRESS=shared_server.address, TEMPORAL_UI_URL=shared_server.ui_url,
                   WORKBOOK_LEARNER=learner, WORKBOOK_STATE_DIR=str(tmp_path / learner))
        processes[learner] = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--nbval-lax", "-q", "-p", "no:cacheprovider", str(NOTEBOOK)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for learner, process in processes.items():
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0, f"{learner}'s notebook failed:\n{out[-3000:]}"

    from temporalio.client import Client

    async def list_all():
        client = await Client.connect(shared_server.address)
        return [(w.id, w.task_queue) async for w in client.list_workflows()]

    workflows = run(list_all())
    owners = {}
    for workflow_id, task_queue in workflows:
        owner = workflow_id.split("-", 1)[0]
        assert owner in ("ann", "bob"), f"{workflow_id} belongs to no learner"
        assert task_queue.startswith(owner + "-"), f"{workflow_id} ran on another learner's queue {task_queue}"
        owners.setdefault(owner, 0)
        owners[owner] += 1
    print(f"workflows on the shared server: {owners}")
    assert owners.get("ann", 0) >= 2 and owners["ann"] == owners.get("bob", 0)
