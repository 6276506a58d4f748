"""The client side of workflow per request (notebook 01), against the real dev server: the `Bank` sends one
short workflow per request and gets the reply, a request waits for a worker, the form refuses bad input, and the
exercise check passes the solution and fails a careless withdraw."""

from __future__ import annotations

import asyncio
import time

import pytest

from tutorial import limits
from tutorial import per_request as pr
from tutorial.exercises import attempted
from tutorial.solutions.nb01_exercise import withdraw_once
from tutorial.status_db import StatusDB
from tutorial.worker import WorkerController
from tutorial.workflows import account_requests as ar
from tutorial.workflows import domain
from tutorial.workshop import unique


def make(client, db, workflows=(ar.AccountRequest, ar.NaiveAccountRequest)):
    return WorkerController(client, task_queue=unique("test-per-request"), workflows=list(workflows),
                            activities=ar.StatusActivities(db).all())


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
    assert max(s["events"] for s in sizes) < limits.HISTORY_EVENTS_WARN.value < limits.HISTORY_EVENTS_MAX.value
    assert run(bank.open_requests()) == []
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

    assert not run(attempted(lambda: pr.probe_withdraw(stub)))
    assert run(attempted(lambda: pr.probe_withdraw(withdraw_once)))
    assert run(attempted(lambda: pr.probe_withdraw(careless)))
    good = run(pr.check_withdraw(client, withdraw_once, db=StatusDB(tmp_path / "good.sqlite")))
    print(good.line())
    assert good.passed and (good.succeeded, good.refused, good.final_balance) == (30, 20, 0)
    bad = run(pr.check_withdraw(client, careless, db=StatusDB(tmp_path / "bad.sqlite")))
    print(bad.line())
    assert not bad.passed and bad.lost > 0
