"""The workflows of notebook 01, against the real dev server: a business error is not retried and writes
nothing, the next request runs new code under the same type name, read-then-write loses an update where one
transaction does not, and a locked database is retried (up to `DB_RETRY.maximum_attempts` times) and the request
goes through once the lock is released. The deploy with a request in flight is `tests/test_deploys.py`."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tutorial import per_request as pr
from tutorial.errors import explain
from tutorial.history import event_types
from tutorial.status_db import StatusDB
from tutorial.worker import WorkerController
from tutorial.workflows import account_requests as ar
from tutorial.workshop import unique


def make(client, db, workflows=(ar.AccountRequest, ar.NaiveAccountRequest)):
    return WorkerController(client, task_queue=unique("test-account-requests"), workflows=list(workflows),
                            activities=ar.StatusActivities(db).all())


@pytest.fixture
def db(tmp_path):
    return StatusDB(tmp_path / "bank.sqlite")


def test_a_business_error_is_not_retried_and_writes_nothing(run, client, db):
    w = make(client, db)
    bank = pr.Bank(client, w.task_queue)
    run(w.start())
    run(bank.send("alice", "deposit", 10))
    with pytest.raises(WorkflowFailureError) as failed:
        run(bank.send("alice", "withdraw", 500))
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable and cause.type == "InsufficientFunds"
    assert explain(cause) == "cannot withdraw 500: balance is 10 (InsufficientFunds)"
    assert run(pr.activity_attempts(bank.handles[-1])) == [1], "a business error is tried once"
    with pytest.raises(WorkflowFailureError) as failed:
        run(bank.send("alice", "deposit", 0))
    assert failed.value.cause.type == "InvalidAmount"
    assert "ActivityTaskScheduled" not in run(event_types(bank.handles[-1])), "refused before touching the db"
    assert db.balance("alice") == 10 and len(db.requests_frame()) == 1 and db.consistent()
    run(w.stop())


def test_the_next_request_after_a_deploy_runs_the_new_code(run, client, db):
    w = make(client, db, workflows=[ar.AccountRequest])
    bank = pr.Bank(client, w.task_queue)
    run(w.start())
    run(bank.send("alice", "deposit", 100))
    old = run(bank.send("alice", "withdraw", 10))
    run(w.restart(workflows=[ar.AccountRequestWithFee]))  # "deploy" release v2 of the same workflow type
    new = run(bank.send("alice", "withdraw", 10))
    assert (old.code, old.fee, old.balance) == ("v1", 0, 90)
    assert (new.code, new.fee, new.balance) == ("v2", ar.WITHDRAWAL_FEE, 90 - 10 - ar.WITHDRAWAL_FEE)
    assert {run(h.describe()).workflow_type for h in bank.handles} == {ar.WORKFLOW_TYPE}, "one type, two releases"
    for handle in bank.handles:
        types = run(event_types(handle))
        assert types[-1] == "WorkflowExecutionCompleted" and "WorkflowTaskFailed" not in types
    with pytest.raises(WorkflowFailureError) as failed:
        run(bank.send("alice", "withdraw", new.balance))  # fits without the fee, not with it: nothing written
    assert "plus a fee of 2" in failed.value.cause.message and db.balance("alice") == new.balance
    assert db.consistent()
    run(w.stop())


def test_the_release_with_a_funds_check_refuses_early_and_serves_new_requests(run, client, db):
    w = make(client, db, workflows=[ar.AccountRequestWithCheck])
    bank = pr.Bank(client, w.task_queue)
    run(w.start())
    db.open_account("alice", 20)
    reply = run(bank.send("alice", "withdraw", 5))
    assert (reply.code, reply.balance) == ("v2-check", 15)
    with pytest.raises(WorkflowFailureError) as failed:
        run(bank.send("alice", "withdraw", 50))
    assert failed.value.cause.type == "InsufficientFunds"
    types = run(event_types(bank.handles[-1]))
    assert types.count("ActivityTaskScheduled") == 1, "refused by the check, before the apply activity"
    assert db.balance("alice") == 15 and db.consistent(["alice"])
    run(w.stop())


def test_careless_requests_lose_an_update_and_one_transaction_loses_nothing(run, client, db):
    w = make(client, db)
    bank = pr.Bank(client, w.task_queue)
    run(w.start())
    db.open_account("naive", 100)

    async def two_at_once():
        return await asyncio.gather(
            bank.send("naive", "deposit", 50, workflow_type="NaiveAccountRequest", review_seconds=0.5),
            bank.send("naive", "withdraw", 30, workflow_type="NaiveAccountRequest", review_seconds=0.5))

    both = run(two_at_once())
    assert [r.balance for r in both] == [150, 70], "each request saw the balance of 100"
    assert db.balance("naive") in (150, 70) and not db.consistent(["naive"])

    db.open_account("sound", 0)
    replies = run(bank.burst("sound", "deposit", 1, 50, review_seconds=0.3))
    failures = [r for r in replies if isinstance(r, BaseException)]
    audit = db.audit(["sound"])
    print(audit)
    assert failures == [] and db.balance("sound") == 50 and int(audit["off_by"][0]) == 0
    assert sorted(r.balance for r in replies) == list(range(1, 51)), "each request saw its own balance"
    run(w.stop())


def test_a_locked_database_is_retried_and_the_request_goes_through_once_it_is_released(run, client, tmp_path):
    db = StatusDB(tmp_path / "locked.sqlite", busy_timeout=0.3)
    db.open_account("alice", 10)
    w = make(client, db)
    bank = pr.Bank(client, w.task_queue)
    run(w.start())
    holder = sqlite3.connect(db.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # someone else holds the database
    try:
        handle = run(bank.start("alice", "deposit", 5))
        run(asyncio.sleep(1.5))
        assert db.path.exists() and run(handle.describe()).status.name == "RUNNING"
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert run(asyncio.wait_for(handle.result(), 20)).balance == 15
    attempts = run(pr.activity_attempts(handle))
    print("activity attempts:", attempts)
    assert attempts[-1] >= 2 and db.balance("alice") == 15
    run(w.stop())


def test_a_bug_in_the_learners_withdraw_fails_the_exercise_workflow_once(run, client, db):
    def buggy(conn, account_id, amount):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE accounts SET balance = balance - ? WHERE account_id = ?", (amount, account_id))
        return 1 / 0  # the write above must be rolled back

    db.open_account("exercise", 30)
    w = WorkerController(client, task_queue=unique("test-account-requests-exercise"),
                         workflows=[ar.ExerciseWithdraw], activities=[ar.ExerciseActivities(db, buggy).run_withdraw])
    run(w.start())
    handle = run(client.start_workflow(ar.ExerciseWithdraw.run, args=["exercise", 10], id=unique("test-exercise-bug"),
                                       task_queue=w.task_queue))
    with pytest.raises(WorkflowFailureError) as failed:
        run(handle.result())
    cause = failed.value.cause.cause  # the workflow failed with the activity's error
    print(explain(cause))
    assert isinstance(cause, ApplicationError) and cause.type == "ExerciseBug" and "ZeroDivisionError" in cause.message
    assert run(pr.activity_attempts(handle)) == [1], "a bug is reported once, not retried"
    assert db.balance("exercise") == 30, "the half-done write was rolled back"
    run(w.stop())
