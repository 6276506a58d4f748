"""The client side of workflow per request (notebook 01), against the real dev server: the `Bank` sends one
short workflow per request and gets the reply, a request waits for a worker, the form refuses bad input, and the
exercise check passes the solution and fails a careless withdraw."""

from __future__ import annotations

import asyncio
import time

import pytest

from tutorial import limits, server
from tutorial import per_request as pr
from tutorial.exercises import attempted
from tutorial.solutions.nb01_exercise import withdraw_once
from tutorial.status_db import StatusDB
from tutorial.worker import WorkerController
from tutorial.workflows import account_requests as ar
from tutorial.workflows import domain
from tutorial.workflows.signal_account import AccountConfig, SignalAccount, payload
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
    assert pr.history_limit_never_in_sight(sizes)
    assert pr.database_reflects_replies(db, [reply])
    run(w.stop())


LOWERED = 200  # limit.historyCount.error on the counterfactual's own server (the real one is 51,200)


def test_counterfactual_c7_an_entity_fed_signals_grows_its_history_until_a_lowered_limit_ends_it(run, tmp_path):
    """On a server that terminates runs at 200 events, 30 requests as 30 workflows pass the C7 check; one entity
    workflow taking 30 deposits as signals fails it: its one history grows (already False at the real warning
    limit) and it is terminated when it reaches the lowered limit."""
    lowered = server.EmbeddedServer(dynamic_config={"limit.historyCount.error": LOWERED,
                                                    "limit.historyCount.warn": LOWERED // 2})
    info = run(lowered.start())
    try:
        client = run(server.connect_to(info))
        db = StatusDB(tmp_path / "lowered.sqlite")
        w = WorkerController(client, task_queue=unique("test-c7"), workflows=[ar.AccountRequest, SignalAccount],
                             activities=ar.StatusActivities(db).all())
        run(w.start())
        bank = pr.Bank(client, w.task_queue)
        for _ in range(30):
            run(bank.send("alice", "deposit", 1))
        per_request = [run(pr.history_size(h)) for h in bank.handles]
        assert pr.history_limit_never_in_sight(per_request, limit=LOWERED)

        entity = run(client.start_workflow(SignalAccount.run, AccountConfig("alice"), id=unique("test-c7-entity"),
                                           task_queue=w.task_queue))
        sizes, refused = [], None
        for i in range(60):
            try:
                run(entity.signal("deposit", payload(1, f"r{i}")))
            except Exception as err:  # noqa: BLE001 - the server refuses the signal once the run is over
                refused = err
                break
            run(asyncio.sleep(0.02))
            if i % 5 == 4:
                sizes.append(run(pr.history_size(entity)))
        final = run(entity.describe())
        print([s["events"] for s in sizes], final.history_length, final.status.name, refused)
        assert not pr.history_limit_never_in_sight(sizes[:3]), "the entity's history grows: False at any limit"
        assert not pr.history_limit_never_in_sight(sizes + [run(pr.history_size(entity))], limit=LOWERED)
        # terminated at the limit: when the batch that would cross it is written (198 events seen, limit 200)
        assert final.status.name == "TERMINATED" and final.history_length >= LOWERED * 0.9 and refused is not None
        run(w.stop())
    finally:
        lowered.stop()


def test_counterfactual_c8_read_then_write_requests_at_once_leave_a_database_that_contradicts_a_reply(run, client, db):
    w = make(client, db)
    bank = pr.Bank(client, w.task_queue)
    run(w.start())
    db.open_account("naive", 100)
    db.open_account("sound", 100)

    async def two_at_once(account_id, **kw):
        return await asyncio.gather(bank.send(account_id, "deposit", 50, review_seconds=0.5, **kw),
                                    bank.send(account_id, "withdraw", 30, review_seconds=0.5, **kw))

    naive = run(two_at_once("naive", workflow_type="NaiveAccountRequest"))
    sound = run(two_at_once("sound"))
    print([r.line() for r in naive], db.balance("naive"), [r.line() for r in sound], db.balance("sound"))
    assert not pr.database_reflects_replies(db, naive), "a lost update: the balance contradicts a reply"
    assert pr.database_reflects_replies(db, sound) and db.balance("sound") == 120
    one_sequential = run(bank.send("naive", "deposit", 1, workflow_type="NaiveAccountRequest"))
    assert one_sequential.balance == db.balance("naive")
    skipped = ar.Reply("never-applied", "sound", "deposit", 5, 125)  # a reply whose database change never happened
    assert not pr.database_reflects_replies(db, [*sound, skipped])
    run(w.stop())


def test_the_retry_budget_of_the_database_activity():
    budget = pr.retry_budget(ar.DB_RETRY, attempt_seconds=5.0)
    assert budget == {"attempts": ar.DB_RETRY.maximum_attempts, "waiting s": 82.5, "total s": 182.5}


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
    with pytest.raises(domain.AccountError) as err:  # the field as the form labels it
        pr.parse_form({"account": "", "operation": "deposit", "amount": "5"})
    assert str(err.value).startswith("account:")
    with pytest.raises(domain.AccountError, match="must be positive"):
        pr.parse_form({"account": "alice", "operation": "deposit", "amount": "-5"})


def test_the_sizes_table_shows_small_percentages_as_more_than_zero():
    sizes = [{"workflow id": f"r{i}", "events": 11, "bytes": 2300, "% of event limit": 0.021,
              "% of size limit": 0.0044} for i in range(10)]
    rows = pr.sizes_table(sizes, last=8)
    assert len(rows) == 8 and rows[0]["workflow id"] == "r2"
    assert rows[0]["% of event limit"] == "0.021" and rows[0]["% of size limit"] == "0.0044"
    assert sizes[0]["% of event limit"] == 0.021  # the measured figures are left as they were


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
