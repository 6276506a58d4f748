"""Notebook 06's deploy over open entities: incompatible code gets TMPRL1100 and the accounts stay open with
nothing lost; roll back, patch and reset each get them going; the replay test sees it before the deploy;
the patch lifecycle says which histories each release can still replay."""

from __future__ import annotations

import pytest

from tutorial import open_deploys as od
from tutorial.errors import WorkbookError
from tutorial.worker import WorkerController
from tutorial.workflows import audited_account as aa
from tutorial.workshop import unique


@pytest.fixture()
def worker(run, client):
    w = WorkerController(client, task_queue=unique("test-nb06"), workflows=[aa.AuditedV1], activities=aa.ACTIVITIES)
    run(w.start())
    yield w
    run(w.stop())


def query(worker):
    return f"TaskQueue='{worker.task_queue}' AND ExecutionStatus='Running'"


def test_the_replay_test_sees_the_incompatible_release_before_it_is_deployed(run, client, worker):
    handles = run(od.open_accounts(client, worker.task_queue, 2))
    for h in handles:
        run(od.settled(h, 10))
    v2 = run(od.replay_test(client, query(worker), "v2"))
    assert set(v2) == {h.id for h in handles} and all(od.NONDETERMINISM in r for r in v2.values()), v2
    v3 = run(od.replay_test(client, query(worker), "v3"))
    assert set(v3.values()) == {"ok"}, "the patched release replays v1 histories"
    run(od.close_all(handles))


def test_an_incompatible_deploy_sticks_open_accounts_and_a_roll_back_frees_them(run, client, worker):
    handles = run(od.open_accounts(client, worker.task_queue, 2))
    for h in handles:
        run(od.settled(h, 10))
    run(od.deploy(worker, "v2"))
    for h in handles:
        run(h.signal("deposit", 5))
    failures = [run(od.stuck(h)) for h in handles]
    assert all(f.nondeterminism for f in failures)
    assert all(run(h.describe()).status.name == "RUNNING" for h in handles), "stuck, not failed: nothing lost"
    run(od.deploy(worker, "v1"))  # roll back
    for h in handles:
        assert run(od.settled(h, 15))["steps"] == ["audited deposit 10", "audited deposit 5"]
    run(od.close_all(handles))


def test_counterfactual_c17_a_compatible_release_does_not_stick_open_accounts(run, client, worker):
    """Where the claim's premise is false (the new code is compatible), the notebook's check finds nothing."""
    handles = run(od.open_accounts(client, worker.task_queue, 2))
    for h in handles:
        run(od.settled(h, 10))
    run(od.deploy(worker, "v3"))
    for h in handles:
        run(h.signal("deposit", 5))
        run(od.settled(h, 15))
    with pytest.raises(Exception, match="did not fail"):
        run(od.stuck(handles[0], timeout=3))
    assert not any(f.nondeterminism for h in handles for f in run(od.task_failures(h)))
    assert set(run(od.replay_test(client, query(worker), "v3")).values()) == {"ok"}
    run(od.close_all(handles))


def test_a_patched_release_keeps_old_executions_on_the_old_path_for_good(run, client, worker):
    """patched() is decided once per execution: a v1-era account never takes the new path, a new one does."""
    old = run(od.open_accounts(client, worker.task_queue, 1))[0]
    run(od.settled(old, 10))
    run(od.deploy(worker, "v3"))
    run(old.signal("deposit", 1))
    assert run(od.settled(old, 11))["steps"] == ["audited deposit 10", "audited deposit 1"]
    new = run(od.open_accounts(client, worker.task_queue, 1))[0]
    assert run(od.settled(new, 10))["steps"] == ["notified deposit 10", "audited deposit 10"]
    everyone = f"TaskQueue='{worker.task_queue}' AND ExecutionStatus='Running'"
    v4 = run(od.replay_test(client, everyone, "v4"))
    assert v4[new.id] == "ok" and od.NONDETERMINISM in v4[old.id], "deprecate only once v1-era runs are gone"
    v1 = run(od.replay_test(client, everyone, "v1"))
    assert v1[old.id] == "ok" and v1[new.id] != "ok", "and a roll back past the patch would break the new one"
    run(od.close_all([old, new]))


def test_reset_runs_the_stuck_part_again_on_the_code_deployed_now_and_keeps_the_signals(run, client, worker):
    handle = run(od.open_accounts(client, worker.task_queue, 1))[0]
    run(od.settled(handle, 10))
    run(od.deploy(worker, "v2"))
    run(handle.signal("deposit", 5))
    run(od.stuck(handle))
    fresh = run(od.reset_to_first_task(client, handle, "v2 is the release now"))
    assert fresh.run_id != handle.run_id
    after = run(od.settled(fresh, 15))
    assert after["steps"] == ["notified deposit 10", "audited deposit 10", "notified deposit 5", "audited deposit 5"]
    failures = run(od.task_failures(fresh))
    assert [f.message for f in failures] == ["v2 is the release now"], "only the reset itself; no nondeterminism"
    run(od.close_all([fresh]))


def test_bad_input_gets_one_line(run, client, worker):
    with pytest.raises(WorkbookError, match="release must be one of v1, v2"):
        run(od.deploy(worker, "v9"))
    handle = run(od.open_accounts(client, worker.task_queue, 1))[0]
    with pytest.raises(WorkbookError, match="event 9999 does not exist"):
        run(od.reset(client, handle, 9999, "no such event"))
    with pytest.raises(WorkbookError, match="event 1 does not end a workflow task"):
        run(od.reset(client, handle, 1, "the workflow's start"))
    run(worker.stop())
    with pytest.raises(WorkbookError, match="No worker is running"):
        run(od.deploy(worker, "v2"))
    run(worker.start())
    run(od.close_all([handle]))


def test_temporal_resets_a_closed_workflow_into_a_new_open_run(run, client, worker):
    """Not bad input for Temporal (measured): a reset of a completed workflow opens a new run, so the console
    refuses to reset an account that is not stuck instead of counting on the server to."""
    handle = run(od.open_accounts(client, worker.task_queue, 1))[0]
    run(od.close_all([handle]))
    fresh = run(od.reset_to_first_task(client, handle, "reset a closed account"))
    assert run(fresh.describe()).status.name == "RUNNING"
    assert fresh.run_id != handle.run_id
    run(od.close_all([fresh]))


def test_a_query_refused_while_the_task_fails_means_not_yet():
    from temporalio.service import RPCError, RPCStatusCode

    refused = RPCError("Unable to query workflow due to Workflow Task in failed state.", RPCStatusCode.FAILED_PRECONDITION, b"")
    assert od.task_still_failing(refused)
    assert not od.task_still_failing(RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""))
