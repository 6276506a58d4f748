"""The signal-and-query account entity (notebook 02), against the real dev server: C2, C9, C10, C11, C13."""

from __future__ import annotations

import asyncio
import statistics

import pytest
from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
from temporalio.common import QueryRejectCondition
from temporalio.service import RPCError, RPCStatusCode

from tutorial import errors, history
from tutorial.workflows import domain
from tutorial import entity_signals as es
from tutorial.entity_signals import AccountEntity, AccountWithBadQueries, payload
from tutorial.solutions.nb02_exercise import deposit_and_confirm
from tutorial.worker import WorkerController
from tutorial.workshop import unique

State = AccountEntity.state


@pytest.fixture(scope="module")
def worker(run, client):
    w = WorkerController(client, task_queue=unique("test-nb02"), workflows=es.WORKFLOWS, activities=es.ACTIVITIES)
    run(w.start())
    yield w
    run(w.stop())


def open_account(run, client, worker, amount=10, **kw):
    """A new account, its first workflow task done (the query waits for it)."""
    handle = run(es.send(client, unique("acct"), "deposit", payload(amount), task_queue=worker.task_queue, **kw))
    assert run(handle.query(AccountEntity.balance)) == amount
    return handle


# ---- pure validation -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, words", [
    ("ten", "payload must be an object"),
    (None, "payload must be an object"),
    ({}, "missing field 'amount'"),
    ({"amout": 5}, "unknown field 'amout'"),
    ({"amount": "5"}, "whole number"),
    ({"amount": 2.5}, "whole number"),
    ({"amount": True}, "whole number"),
    ({"amount": 0}, "positive"),
    ({"amount": 10**9}, "at most"),
    ({"amount": 5, "request_id": 7}, "request_id must be a string"),
])
def test_parse_payload_rejects_bad_shapes_with_a_reason(raw, words):
    with pytest.raises(domain.AccountError, match=words):
        es.parse_payload("deposit", raw)


def test_parse_payload_accepts_the_documented_shape():
    assert es.parse_payload("withdraw", payload(5, "r1")) == domain.Transaction("withdraw", 5, "r1")


# ---- C9: signals change state and return nothing; queries read and leave no trace --------------------------

def test_signal_with_start_creates_the_account_then_signals_it(run, client, worker):
    handle = open_account(run, client, worker, 10)
    again = run(es.send(client, handle.id, "deposit", payload(5), task_queue=worker.task_queue))
    assert again.id == handle.id
    assert run(handle.signal(AccountEntity.withdraw, payload(3))) is None  # a signal returns nothing
    state = run(handle.query(State))
    assert (state.balance, state.transactions, state.open) == (12, 3, True)
    starts = run(history.event_types(handle)).count("WorkflowExecutionStarted")
    assert starts == 1, "the second signal-with-start signalled the open account instead of starting one"


def test_queries_leave_no_trace_in_the_history(run, client, worker):
    handle = open_account(run, client, worker)
    length = run(es.history_length(handle))
    for _ in range(10):
        run(handle.query(State))
        run(handle.query(AccountEntity.balance))
    assert run(es.history_length(handle)) == length


def test_a_query_may_not_start_an_activity(run, client, worker):
    handle = open_account(run, client, worker, 40, workflow_class=AccountWithBadQueries)
    with pytest.raises(WorkflowQueryFailedError, match="While in read-only function, action attempted: start activity"):
        run(handle.query(AccountWithBadQueries.audited_balance))
    assert run(handle.query(State)).balance == 40
    assert "ActivityTaskScheduled" not in run(history.event_types(handle))


def test_a_query_that_mutates_changes_the_cache_only_and_a_replay_undoes_it(run, client, worker):
    handle = open_account(run, client, worker, 40, workflow_class=AccountWithBadQueries)
    length = run(es.history_length(handle))
    assert run(handle.query(AccountWithBadQueries.balance_with_bonus)) == 140
    assert run(handle.query(AccountEntity.balance)) == 140, "the cached object did change"
    assert run(es.history_length(handle)) == length, "but nothing reached the history"
    replays = worker.replays(handle.id)
    run(worker.restart())  # empties the cache: the next query replays the history
    assert run(handle.query(AccountEntity.balance)) == 40
    assert worker.replays(handle.id) == replays + 1


# ---- bad input ------------------------------------------------------------------------------------------------

def test_bad_signals_are_rejected_logged_and_counted_and_the_account_keeps_working(run, client, worker):
    handle = open_account(run, client, worker, 10)
    with es.WorkflowLogs() as logs:
        run(handle.signal("deposit", "ten"))
        run(handle.signal("deposit", {"amount": "10"}))
        run(handle.signal("deposit", {"sum": 10}))
        run(handle.signal("deposit"))  # no payload at all
        run(handle.signal("deposit", args=[payload(1), "surplus"]))  # one argument too many
        run(handle.signal("depositt", payload(1)))  # unknown signal name
        run(handle.signal(AccountEntity.withdraw, payload(1000, "too-much")))
        run(handle.signal(AccountEntity.deposit, payload(5, "r1")))
        run(handle.signal(AccountEntity.deposit, payload(5, "r1")))  # duplicate request id
        state = run(handle.query(State))
    assert (state.balance, state.transactions, state.rejected, state.signals_received) == (15, 2, 8, 10)
    assert "already applied" in state.last_rejection
    reasons = [str(r) for r in run(handle.query(AccountEntity.recent_rejections))]
    assert any("unknown signal 'depositt'" in r for r in reasons) and any("one payload" in r for r in reasons)
    assert sum("rejected" in m for m in logs.messages) >= 8, logs.messages
    assert run(handle.query(AccountEntity.outcome, "too-much")).startswith("rejected: cannot withdraw 1000")
    assert run(handle.query(AccountEntity.outcome, "r1")) == "applied"
    assert run(handle.query(AccountEntity.outcome, "never-sent")) == ""
    assert "WorkflowTaskFailed" not in run(history.event_types(handle)), "no handler failed a workflow task"
    run(handle.signal(AccountEntity.deposit, payload(1)))
    assert run(handle.query(AccountEntity.balance)) == 16


def test_closed_and_missing_accounts_give_clear_messages(run, client, worker):
    handle = open_account(run, client, worker, 10)
    run(handle.signal(AccountEntity.close))
    final = run(asyncio.wait_for(handle.result(), 20))
    assert not final.open and final.closed_reason == "closed by the owner"
    with pytest.raises(RPCError) as signal_error:
        run(handle.signal(AccountEntity.deposit, payload(1)))
    assert signal_error.value.status == RPCStatusCode.NOT_FOUND and "completed" in errors.explain(signal_error.value)
    with pytest.raises(WorkflowQueryRejectedError) as rejected:
        run(handle.query(State, reject_condition=QueryRejectCondition.NOT_OPEN))
    assert "COMPLETED" in errors.explain(rejected.value)
    with pytest.raises(domain.AccountClosed, match="is closed"):
        run(es.send(client, handle.id, "deposit", payload(1), task_queue=worker.task_queue))
    with pytest.raises(RPCError) as missing:
        run(client.get_workflow_handle(unique("no-such-account")).query(State))
    assert errors.explain(missing.value).startswith("Not found")


# ---- C10: timers and cancellation ----------------------------------------------------------------------------

def test_the_idle_timer_closes_the_account(run, client, worker):
    handle = open_account(run, client, worker, 7, idle_close_after_s=1.0)
    run(asyncio.sleep(0.3))
    run(handle.signal(AccountEntity.deposit, payload(1)))  # restarts the timer
    final = run(asyncio.wait_for(handle.result(), 20))
    assert (final.balance, final.open) == (8, False) and final.closed_reason.startswith("idle")
    types = run(history.event_types(handle))
    assert types.count("TimerStarted") == 2 and "TimerCanceled" in types and types.count("TimerFired") == 1


def test_cancellation_closes_the_account_cleanly(run, client, worker):
    handle = open_account(run, client, worker, 7)
    run(handle.cancel())
    final = run(asyncio.wait_for(handle.result(), 20))
    assert (final.balance, final.open, final.closed_reason) == (7, False, "cancelled by a client")
    assert run(handle.describe()).status.name == "COMPLETED"


# ---- C2: the server keeps signals while no worker runs --------------------------------------------------------

def test_signals_sent_while_the_worker_is_stopped_are_all_applied(run, client):
    w = WorkerController(client, task_queue=unique("test-nb02-stop"), workflows=es.WORKFLOWS)
    run(w.start())
    handle = run(es.send(client, unique("acct"), "deposit", payload(1), task_queue=w.task_queue))
    run(handle.query(State))
    run(w.stop())
    for i in range(20):
        run(handle.signal(AccountEntity.deposit, payload(i + 1, f"offline-{i}")))
    assert run(history.event_types(handle)).count("WorkflowExecutionSignaled") == 21
    with pytest.raises(TimeoutError):
        run(es.query_until(lambda: handle.query(State), lambda s: True, timeout=1.0))
    run(w.start())
    state = run(handle.query(State))
    run(w.stop())
    assert (state.transactions, state.balance, state.rejected) == (21, 1 + 210, 0)


# ---- C11: signalling is asynchronous ---------------------------------------------------------------------------

def test_a_query_sent_with_the_signal_may_miss_it_one_sent_after_the_ack_waits_for_it(run, client, worker):
    handle = open_account(run, client, worker, 1)
    at_once = run(es.signal_then_query(handle, 40, at_once=True))
    after_ack = run(es.signal_then_query(handle, 40, at_once=False))
    missed = sum(not p.first_query_saw_it for p in at_once)
    print(f"at once: {missed}/40 missed; after ack: {sum(not p.first_query_saw_it for p in after_ack)}/40")
    assert missed >= 1, "a query racing the signal should sometimes arrive first"
    assert all(p.first_query_saw_it for p in after_ack), "the server holds a later query until the signal is applied"
    assert all(p.queries >= 2 for p in at_once if not p.first_query_saw_it)
    assert run(handle.query(State)).transactions == 81


def test_query_until_gives_up_with_a_timeout(run, client, worker):
    handle = open_account(run, client, worker, 1)
    seen = run(es.query_until(lambda: handle.query(State), lambda s: s.balance == 1, timeout=5))
    assert seen.queries == 1 and seen.value.balance == 1
    with pytest.raises(TimeoutError) as timeout:
        run(es.query_until(lambda: handle.query(State), lambda s: s.balance == 99, timeout=0.5))
    assert "not visible" in str(timeout.value) and errors.explain(timeout.value).startswith("Timed out")


# ---- C13: a slow or busy worker delays when a signal becomes visible -------------------------------------------

def test_a_busy_worker_delays_when_a_signal_becomes_visible(run, client):
    w = WorkerController(client, task_queue=unique("test-nb02-busy"), workflows=es.WORKFLOWS,
                         max_concurrent_workflow_tasks=2)
    run(w.start())
    probe = run(es.send(client, unique("probe"), "deposit", payload(1), task_queue=w.task_queue))
    idle = statistics.median(run(es.visibility_ms(probe, 10)))
    noisy = [run(es.send(client, unique("noisy"), "deposit", payload(1), task_queue=w.task_queue,
                         handler_delay_ms=60)) for _ in range(4)]
    noise = run(es.Noise(noisy).start())
    run(asyncio.sleep(0.3))
    busy = statistics.median(run(es.visibility_ms(probe, 8)))
    run(noise.stop())
    slow = run(es.send(client, unique("slow"), "deposit", payload(1), task_queue=w.task_queue, handler_delay_ms=150))
    slow_ms = statistics.median(run(es.visibility_ms(slow, 5)))
    for h in (*noisy, probe, slow):
        run(h.signal(AccountEntity.close))
    run(w.stop())
    print(f"idle {idle:.0f} ms, busy {busy:.0f} ms, slow handler {slow_ms:.0f} ms")
    assert busy > 2 * idle and busy > idle + 30
    assert slow_ms > idle + 75  # at least half the handler's 150 ms shows up


# ---- widgets and the exercise ---------------------------------------------------------------------------------

def click(run, button):
    """Click an ActionButton on the session loop (as a learner would) and wait for what it did."""
    async def go():
        return await button.click()
    return run(go())


def test_the_console_sends_signals_and_shows_queries(run, client):
    w = WorkerController(client, task_queue=unique("test-nb02-ui"), workflows=es.WORKFLOWS)
    run(w.start())
    console = es.AccountConsole(client, unique("ui"), task_queue=w.task_queue, query_timeout=1.0)
    text = run(console.form.submit(operation="deposit", amount="25"))
    assert "applied" in text and console.last_state.balance == 25 and "25" in console.view.value
    assert run(console.form.submit(operation="withdraw", amount="lots")) is None  # parse refused: nothing sent
    assert console.form.sent == 1 and "whole number" in errors.explain(console.form.last_error)
    assert "1 more rejected" in click(run, console.bad_button)
    frame_html = click(run, console.history_button)
    assert "WorkflowExecutionSignaled" in frame_html.data
    run(w.stop())
    assert click(run, console.refresh_button).startswith("no answer") and "No answer" in console.view.value
    assert "not applied yet" in run(console.form.submit(operation="deposit", amount="5"))  # kept by the server
    run(w.start())
    assert run(console.refresh()).balance == 30, "the deposit sent while the worker was stopped is applied now"
    click(run, console.close_button)
    assert console.last_state.open is False
    run(w.stop())


def test_the_exercise_solution(run, client, worker):
    handle = open_account(run, client, worker, 10)
    assert run(deposit_and_confirm(handle, 5, "ex-1")) == 15
    assert run(deposit_and_confirm(handle, 5, "ex-1")) == 15  # a retried request is applied once
    with pytest.raises(domain.AccountError, match="positive"):
        run(deposit_and_confirm(handle, -5, "ex-2"))
