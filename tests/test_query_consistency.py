"""C11 and a query's failure modes, against the real dev server, each check also run where it must say no."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from tutorial import entity_signals as es
from tutorial import limits, polling
from tutorial import query_consistency as qc
from tutorial.worker import WorkerController
from tutorial.workflows import signal_account as sa
from tutorial.workflows import signal_handlers as sh
from tutorial.workflows.signal_account import SignalAccount, payload
from tutorial.workshop import unique


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb02-qc", [*sa.WORKFLOWS, *sh.WORKFLOWS], sh.ACTIVITIES) as w:
        yield w


def test_counterfactual_c11_a_synchronous_handler_is_never_seen_half_applied(run, client, worker):
    awaiting = run(qc.open_reviewed(client, unique("c11-await"), task_queue=worker.task_queue, review=True))
    sync = run(qc.open_reviewed(client, unique("c11-sync"), task_queue=worker.task_queue, review=False))
    awaited = run(qc.after_ack_runs(awaiting, 5, review=True, prefix=unique("aw")))
    synced = run(qc.after_ack_runs(sync, 5, review=False, prefix=unique("sy")))
    for row in qc.runs_table(awaited + synced):
        print(row)
    assert qc.later_queries_saw_half_applied(awaited)
    assert not qc.later_queries_saw_half_applied(synced), "a synchronous handler is never seen half-applied"
    assert qc.later_queries_saw_it_applied(synced)
    assert not qc.later_queries_saw_it_applied(awaited), "an awaiting handler is not done when the query answers"
    assert all(r.queries >= 2 for r in awaited) and run(awaiting.query(sh.ReviewedAccount.state)).balance == 5
    for h in (awaiting, sync):
        run(h.signal(sh.ReviewedAccount.close))


def test_the_checks_need_runs():
    assert not qc.later_queries_saw_half_applied([]) and not qc.later_queries_saw_it_applied([])


def test_no_poller_fails_fast_held_queries_overflow_and_query_until_waits_them_out(run, client):
    """One stopped worker, three facts (about 25 s): with no poller for a while a query fails fast; with a task
    pending the server holds BUFFERED_QUERIES and refuses the rest; `query_until` waits out both."""
    w = WorkerController(client, task_queue=unique("test-nb02-nopoll"), workflows=sa.WORKFLOWS)
    run(w.start())
    handle = run(es.send(client, unique("acct"), "deposit", payload(1), task_queue=w.task_queue))
    run(handle.query(SignalAccount.balance))
    # while a worker polls, the same probe gets an answer: the check says no
    polled = run(qc.no_poller(client, handle.id, "balance", time.monotonic()))
    assert polled.tries[-1][1].status == "OK" and not qc.said_no_poller(polled)
    run(w.stop())
    stopped = time.monotonic()
    # no worker, no pending task: waiting out the no-poller error works once the worker is back
    result = run(qc.no_poller(client, handle.id, "balance", stopped))
    print([(t, a.status, round(a.ms)) for t, a in result.tries])
    assert qc.said_no_poller(result), result
    assert 5 <= result.failed_after_s <= 40 and 1500 <= result.tries[-1][1].ms < 3000  # 1 s before the deadline
    with pytest.raises(Exception) as raw_error:  # without retry_if the poller stops at the first one
        run(polling.until(lambda: handle.query(SignalAccount.balance, rpc_timeout=timedelta(seconds=3)), timeout=8))
    assert es.query_not_yet(raw_error.value) and "no poller" in str(raw_error.value)

    async def worker_back_later():
        await asyncio.sleep(1.0)
        await w.start()
    back = asyncio.ensure_future(worker_back_later(), loop=run.__self__)
    seen = run(es.state_until(handle, lambda s: s.balance == 1, timeout=20))
    run(back)
    assert seen.value.balance == 1 and seen.tries >= 2
    # a pending task (a signal sent while no worker runs): one query held, the others refused
    run(w.stop())
    run(handle.signal(SignalAccount.deposit, payload(1)))
    held = run(qc.held_queries(client, handle.id, "balance", w.start))
    print([(a.status, a.message[:40], round(a.ms)) for a in held.answers])
    assert qc.buffer_refused_the_rest(held) and held.buffered == limits.BUFFERED_QUERIES.value
    assert held.answers[0].status == "OK" and held.answers[0].message == "2"
    # no task pending: every query is answered, the check says no
    calm = run(qc.held_queries(client, handle.id, "balance", lambda: asyncio.sleep(0)))
    assert all(a.status == "OK" for a in calm.answers) and not qc.buffer_refused_the_rest(calm)
    run(handle.signal(SignalAccount.close))
    run(w.stop())


def test_query_not_yet_names_only_the_waiting_errors():
    from temporalio.service import RPCError, RPCStatusCode
    assert es.query_not_yet(RPCError("no poller seen for task queue recently", RPCStatusCode.FAILED_PRECONDITION, b""))
    assert es.query_not_yet(RPCError("consistent query buffer is full", RPCStatusCode.RESOURCE_EXHAUSTED, b""))
    assert not es.query_not_yet(RPCError("Workflow Task in failed state", RPCStatusCode.FAILED_PRECONDITION, b""))
    assert not es.query_not_yet(RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""))
    assert not es.query_not_yet(ValueError("x"))
