"""Notebook 03's experiments on what goes wrong after an update is sent (`tutorial.update_failures`): an
exception in the handler after acceptance (item 4), and a server restart before any worker accepted it
(item 6), each with its variant where the check must say no."""

from __future__ import annotations

import logging

import pytest

from tutorial import update_failures as uf
from tutorial.worker import WorkerController
from tutorial.workflows import update_account as ua
from tutorial.workshop import unique


@pytest.fixture()
def fee_workers(run, client):
    buggy = WorkerController(client, task_queue=unique("test-nb03-fees"), workflows=[ua.FeeAccount])
    fixed = WorkerController(client, task_queue=buggy.task_queue, workflows=[ua.FixedFeeAccount])
    run(buggy.start())
    yield buggy, fixed
    run(buggy.stop())
    run(fixed.stop())


def test_an_application_error_fails_the_update_and_a_bug_fails_the_workflow_task(run, client, fee_workers):
    buggy, fixed = fee_workers
    handle = run(uf.open_fee_account(client, buggy.task_queue, opening=20))
    business = run(uf.charge_fee_and_look(client, handle, "overdraft", update_id=unique("fee")))
    assert uf.failed_only_the_update(business) and not uf.failed_the_workflow_task(business), business.row()
    assert "InsufficientFunds" in business.caller_saw and business.worker_warnings == 0
    assert business.caller_saw.startswith("failed after it was accepted: ")  # its UpdateAccepted is in the history

    stuck_id = unique("fee")
    bug = run(uf.charge_fee_and_look(client, handle, "stamp", update_id=stuck_id, wait_s=2.0))
    try:
        assert uf.failed_the_workflow_task(bug) and not uf.failed_only_the_update(bug), bug.row()
        assert bug.waited_s >= 1.9 and bug.worker_warnings >= 1 and bug.pending_attempt >= 1
        fix = run(uf.deploy_fix(client, handle, stuck_id, buggy, fixed))
        assert uf.fix_ended_the_stuck_update(fix), fix
        assert run(handle.execute_update(ua.FeeAccount.charge_fee, "card")) == 15, "the workflow goes on"
        run(handle.execute_update(ua.FeeAccount.close))
        assert run(handle.result()).balance == 15
    finally:
        if run(handle.describe()).status.name == "RUNNING":
            run(handle.terminate("test clean-up"))


def test_counterfactual_item4_the_fix_check_says_no_while_the_bug_is_deployed(run, client, fee_workers):
    buggy, _fixed = fee_workers
    handle = run(uf.open_fee_account(client, buggy.task_queue))
    stuck_id = unique("fee")
    run(uf.charge_fee_and_look(client, handle, "stamp", update_id=stuck_id, wait_s=1.0))
    same_bug = WorkerController(client, task_queue=buggy.task_queue, workflows=[ua.FeeAccount])
    redeployed = run(uf.deploy_fix(client, handle, stuck_id, buggy, same_bug, timeout=8))
    assert not uf.fix_ended_the_stuck_update(redeployed), redeployed  # the same code does not unstick it
    assert redeployed.caller_saw.endswith("still stuck") and redeployed.task_waiting
    assert "WorkflowExecutionUpdateAccepted" not in redeployed.new_events
    run(same_bug.stop())
    run(handle.terminate("test clean-up"))
    assert run(handle.describe()).status.name == "TERMINATED"


def test_counting_worker_warnings_keeps_them_out_of_the_log_and_restores_it():
    logger = logging.getLogger(uf.WORKER_LOGGER)
    before = logger.propagate
    with uf.counting_worker_warnings() as records:
        logger.warning("Failed activation on workflow X")
        logger.info("not counted")
    assert [r.getMessage() for r in records] == ["Failed activation on workflow X"]
    assert logger.propagate == before and not any(type(h).__name__ == "Keep" for h in logger.handlers)


def test_a_server_restart_drops_an_admitted_update_and_a_retry_with_the_same_id_is_safe(run):
    steps: list[str] = []
    r = run(uf.update_across_restart(restart=True, step=steps.append))
    # not completed before the restart: waiting for a worker (SCHEDULED), or, once in a clean-clone run, handed to a
    # poll the stopping worker still had open at the server (STARTED), which never completes it
    assert r.task_before["task state"] in ("SCHEDULED", "STARTED") and r.task_after["task waiting"] is False
    assert uf.admitted_update_was_dropped(r), r.rows()
    assert uf.retry_applied_once(r) and r.retries == [107, 107] and r.final_balance == 107
    assert len(steps) == 5 and steps[2].startswith("server restarted")
    assert [row["balance"] for row in r.rows()] == [100, 100, 107]


def test_counterfactual_item6_without_a_restart_the_admitted_update_is_applied_later(run):
    r = run(uf.update_across_restart(restart=False))
    assert not uf.admitted_update_was_dropped(r), r.rows()
    assert r.lookup == "the update completed: returned 107" and r.balance_after == 107
    assert uf.retry_applied_once(r), "the retries return the first result and deposit nothing more"


def test_retry_check_says_no_when_a_retry_deposited_again():
    twice = uf.RestartRun(True, 100, 7, {}, {}, "NOT_FOUND: x", 100, [107, 114], 114)
    assert uf.admitted_update_was_dropped(twice) and not uf.retry_applied_once(twice)
