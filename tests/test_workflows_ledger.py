"""Notebook 04's workflow, `tutorial.workflows.ledger`: the ledger applies signals and refuses overdrafts, the
three versions share one workflow type, and V3's patch gives new workflows the grace period. Real dev server."""

from __future__ import annotations

from tutorial import history, replay
from tutorial.replay import settle
from tutorial.worker import WorkerController
from tutorial.workflows.ledger import WORKFLOW_NAME, Ledger, LedgerV2, LedgerV3
from tutorial.workshop import unique


def test_ledger_applies_signals_refuses_overdrafts_and_closes(run, client):
    w = WorkerController(client, task_queue=unique("test-ledger"), workflows=[Ledger])
    handle = run(client.start_workflow(Ledger.run, "acc", id=unique("test-ledger"), task_queue=w.task_queue))
    run(handle.signal(Ledger.deposit, 10))  # sent before any worker runs: handled with the first task
    run(w.start())
    run(handle.signal(Ledger.withdraw, 3))
    run(handle.signal(Ledger.withdraw, 100))
    run(settle(handle))
    state = run(handle.query(Ledger.state))
    assert (state.balance, state.transactions, state.open) == (7, 2, True)
    assert run(handle.query(Ledger.refusals)) == ["cannot withdraw 100: balance is 7"]
    run(handle.signal(Ledger.close))
    final = run(handle.result())
    assert final.balance == 7 and not final.open
    run(w.stop())


def test_the_three_versions_are_one_workflow_type():
    assert {replay.workflow_type_of(cls) for cls in (Ledger, LedgerV2, LedgerV3)} == {WORKFLOW_NAME}
    assert WORKFLOW_NAME == "ReplayLedger"


def test_v3_runs_new_workflows_with_the_grace_period(run, client):
    w = WorkerController(client, task_queue=unique("test-replay-v3"), workflows=[LedgerV3])
    run(w.start())
    h = run(client.start_workflow(LedgerV3.run, "new", id=unique("test-v3"), task_queue=w.task_queue))
    run(h.signal(LedgerV3.close))
    assert not run(h.result()).open
    types = run(history.event_types(h))
    assert "MarkerRecorded" in types and "TimerStarted" in types  # patched() is True for new workflows
    run(w.stop())
    report = run(replay.replay_history(run(h.fetch_history()), LedgerV3))
    assert report.ok
    assert not run(replay.replay_history(run(h.fetch_history()), Ledger)).ok  # and v1 cannot replay v3's history
