"""Workflow per request (notebook 01), against the real dev server: one short workflow per request, the
account in SQLite, business errors not retried, new code for the next request, no lost update."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from tutorial.workflows import domain
from tutorial import per_request as pr
from tutorial.errors import explain
from tutorial.history import event_types
from tutorial.solutions.nb01_exercise import withdraw_once
from tutorial.status_db import StatusDB
from tutorial.worker import WorkerController
from tutorial.workshop import unique


def make(client, db, workflows=(pr.AccountRequest, pr.NaiveAccountRequest)):
    return WorkerController(client, task_queue=unique("test-per-request"), workflows=list(workflows),
                            activities=pr.StatusActivities(db).all())


@pytest.fixture
def db(tmp_path):
    return StatusDB(tmp_path / "bank.sqlite")


def test_a_request_is_one_short_workflow_whose_result_is_the_reply(run, client, db):
    w = make(client, db)
    bank = pr.Bank(client, w.task_queue)
    run(w.start())
    reply = run(bank.send("alice", "deposit", 100))
    assert (reply.balance, reply.code, reply.fee) == (100, "v1", 0)
    assert reply.request_id == bank.handles[0].id, "the workflow id is the request id in the log"
    for _ in range(4):
        reply = run(bank.send("alice", "withdraw", 5))
    assert reply.balance == 80 and db.balance("alice") == 80
    assert list(db.requests_frame("alice")["request_id"]) == [h.id for h in bank.handles]
    sizes = [run(pr.history_size(h)) for h in bank.handles]
    print(sizes[0], sizes[-1])
    assert {s["events"] for s in sizes} == {11}, "the 5th request's history is as short as the 1st"
    assert max(s["events"] for s in sizes) < pr.HISTORY_EVENT_WARN < pr.HISTORY_EVENT_LIMIT
    assert run(bank.open_requests()) == []
    run(w.stop())


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


def test_the_next_request_runs_the_new_code_and_nothing_breaks(run, client, db):
    w = make(client, db, workflows=[pr.AccountRequest])
    bank = pr.Bank(client, w.task_queue)
    run(w.start())
    run(bank.send("alice", "deposit", 100))
    old = run(bank.send("alice", "withdraw", 10))
    assert run(bank.open_requests()) == [], "no execution stays open across the deploy"
    run(w.restart(workflows=[pr.AccountRequestWithFee]))  # "deploy" release v2 of the same workflow type
    new = run(bank.send("alice", "withdraw", 10))
    assert (old.code, old.fee, old.balance) == ("v1", 0, 90)
    assert (new.code, new.fee, new.balance) == ("v2", pr.WITHDRAWAL_FEE, 90 - 10 - pr.WITHDRAWAL_FEE)
    assert {run(h.describe()).workflow_type for h in bank.handles} == {pr.WORKFLOW_TYPE}, "one type, two releases"
    for handle in bank.handles:
        types = run(event_types(handle))
        assert types[-1] == "WorkflowExecutionCompleted" and "WorkflowTaskFailed" not in types
    with pytest.raises(WorkflowFailureError) as failed:
        run(bank.send("alice", "withdraw", new.balance))  # fits without the fee, not with it: nothing written
    assert "plus a fee of 2" in failed.value.cause.message and db.balance("alice") == new.balance
    assert db.consistent()
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


def test_a_request_sent_while_no_worker_runs_waits_and_then_completes(run, client, db):
    w = make(client, db)
    bank = pr.Bank(client, w.task_queue)
    db.open_account("alice", 10)
    handle = run(bank.start("alice", "deposit", 5))
    run(asyncio.sleep(1.0))
    assert run(handle.describe()).status.name == "RUNNING" and db.balance("alice") == 10
    run(w.start())
    assert run(asyncio.wait_for(handle.result(), 20)).balance == 15
    assert db.balance("alice") == 15 and db.consistent()
    run(w.stop())


def test_a_locked_database_is_retried_until_the_request_goes_through(run, client, tmp_path):
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


def test_the_form_rejects_bad_input_with_a_short_message():
    assert pr.parse_form({"account": "alice", "operation": " Deposit ", "amount": "1,000"}) == {
        "account_id": "alice", "operation": "deposit", "amount": 1000}
    for values in ({"account": "alice", "operation": "deposit", "amount": "ten"},
                   {"account": "alice", "operation": "deposit", "amount": "-5"},
                   {"account": "alice", "operation": "deposit", "amount": ""},
                   {"account": "", "operation": "deposit", "amount": "5"},
                   {"account": "alice", "operation": "steal", "amount": "5"}):
        with pytest.raises(domain.AccountError) as err:
            pr.parse_form(values)
        assert "\n" not in str(err.value) and len(str(err.value)) < 80


def test_the_exercise_check_passes_the_solution_and_fails_a_careless_withdraw(run, client, tmp_path):
    def stub(conn, account_id, amount):
        raise NotImplementedError

    def careless(conn, account_id, amount):
        (balance,) = conn.execute("SELECT balance FROM accounts WHERE account_id = ?", (account_id,)).fetchone()
        if balance < amount:
            return False
        time.sleep(0.05)  # anything between the read and the write widens the window
        conn.execute("UPDATE accounts SET balance = ? WHERE account_id = ?", (balance - amount, account_id))
        return True

    assert not pr.attempted(stub) and pr.attempted(withdraw_once) and pr.attempted(careless)
    good = run(pr.check_withdraw(client, withdraw_once, db=StatusDB(tmp_path / "good.sqlite")))
    print(good.line())
    assert good.passed and (good.succeeded, good.refused, good.final_balance) == (30, 20, 0)
    bad = run(pr.check_withdraw(client, careless, db=StatusDB(tmp_path / "bad.sqlite")))
    print(bad.line())
    assert not bad.passed and bad.lost > 0
