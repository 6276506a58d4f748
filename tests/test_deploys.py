"""C6 against the real dev server: a deploy meets the requests in flight. A release whose commands match the old
history finishes them; one that adds a step before the old code's first decision fails their workflow task
(nondeterminism) until the old release is deployed again."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from tutorial import deploys, polling
from tutorial import per_request as pr
from tutorial.history import event_types
from tutorial.status_db import StatusDB
from tutorial.worker import WorkerController
from tutorial.workflows import account_requests as ar
from tutorial.workshop import unique


@pytest.fixture
def db(tmp_path):
    return StatusDB(tmp_path / "bank.sqlite", busy_timeout=0.3)


def make(client, db):
    return WorkerController(client, task_queue=unique("test-deploys"), workflows=[ar.AccountRequest],
                            activities=ar.StatusActivities(db).all())


def test_counterfactual_c6_a_release_that_adds_a_step_fails_the_request_in_flight(run, client, db):
    w = make(client, db)
    bank = pr.Bank(client, w.task_queue)
    db.open_account("alice", 100)
    steps = []
    fine = run(deploys.across_deploy(bank, w, ar.AccountRequest, ar.AccountRequestWithFee, account_id="alice",
                                     review_seconds=2.0, on_step=steps.append))
    print(fine.line())
    assert len(steps) == 4 and fine.crossed and fine.workers[0] != fine.workers[-1]
    assert deploys.finished_without_a_failed_task(fine)
    assert (fine.reply.code, fine.reply.fee) == ("v2", ar.WITHDRAWAL_FEE), "the fee is decided after the review"
    assert w.replays(fine.workflow_id) >= 1, "the new worker replayed the old history"

    stuck = run(deploys.across_deploy(bank, w, ar.AccountRequest, ar.AccountRequestWithCheck, account_id="alice",
                                      review_seconds=2.0))
    print(stuck.line())
    assert stuck.crossed and not deploys.finished_without_a_failed_task(stuck)
    assert stuck.status == "RUNNING" and stuck.reply is None and stuck.nondeterminism
    assert stuck.task_attempt is not None and stuck.task_attempt >= 1
    assert stuck.fresh.code == "v2-check", "a request started after the deploy runs the new release fine"

    reply, seconds = run(deploys.roll_back(w, ar.AccountRequest, stuck))
    print(f"rolled back: {reply.line()} after {seconds:.1f} s")
    assert (reply.code, reply.fee) == ("v1", 0)
    assert run(bank.open_requests()) == [], "nothing stays open"
    assert db.consistent(["alice"])
    run(w.stop())


def test_a_fee_change_after_the_activity_was_scheduled_replays_and_keeps_the_old_fee(run, client, db):
    """The fee is the activity's input. Once v1 scheduled the activity, its input (fee 0) is in the history; v2's
    replay asks for fee 2, and the SDK does not compare inputs: no failure, and the request keeps v1's fee."""
    w = make(client, db)
    bank = pr.Bank(client, w.task_queue)
    db.open_account("bob", 100)
    run(w.start())
    holder = sqlite3.connect(db.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the activity keeps failing "locked" and is retried: it stays in flight
    try:
        handle = run(bank.start("bob", "withdraw", 10))
        run(polling.until(lambda: event_types(handle), lambda t: "ActivityTaskScheduled" in t, timeout=20))
        run(w.restart(workflows=[ar.AccountRequestWithFee]))
    finally:
        holder.execute("COMMIT")
        holder.close()
    reply = run(asyncio.wait_for(handle.result(), 30))
    types = run(event_types(handle))
    print(reply.line(), types)
    assert (reply.code, reply.fee, reply.balance) == ("v1", 0, 90) and "WorkflowTaskFailed" not in types
    assert w.replays(handle.id) >= 1
    run(w.stop())



class SlowDeploy(WorkerController):
    """A deploy that takes a second to begin: the old worker keeps running meanwhile."""

    async def restart(self, **changes):
        if self.running:
            await asyncio.sleep(1.0)
        return await super().restart(**changes)


def test_a_request_the_old_release_finished_before_the_deploy_does_not_count_as_in_flight(run, client, db):
    """The experiment only counts a request that really crossed the deploy: with a review far shorter than the
    deploy takes, the old worker finishes the request first; the experiment retries with longer reviews and
    then says so, rather than reporting a deploy that met no request."""
    w = SlowDeploy(client, task_queue=unique("test-deploys-slow"), workflows=[ar.AccountRequest],
                   activities=ar.StatusActivities(db).all())
    bank = pr.Bank(client, w.task_queue)
    db.open_account("carol", 100)
    with pytest.raises(deploys.WorkbookError, match="too busy"):
        run(deploys.across_deploy(bank, w, ar.AccountRequest, ar.AccountRequestWithCheck, account_id="carol",
                                  review_seconds=0.01, tries=2))
    assert run(bank.open_requests()) == [], "each attempt's request was finished by the old release"
    assert set(db.requests_frame("carol")["code"]) == {"opening", "v1"}
    run(w.stop())
