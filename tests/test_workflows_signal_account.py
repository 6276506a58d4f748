"""Notebook 02's entity, `SignalAccount`, against the real dev server: signals change it and return nothing,
queries read it and leave no trace (C9), bad input is rejected and never wedges it, a timer and cancellation
close it (C10), and the server keeps signals while no worker runs (C2)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowQueryFailedError

from tutorial import entity_signals as es
from tutorial import history, polling
from tutorial.worker import WorkerController
from tutorial.workflows import domain
from tutorial.workflows import signal_account as sa
from tutorial.workflows.signal_account import AccountWithBadQueries, SignalAccount, payload
from tutorial.workshop import unique

State = SignalAccount.state


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb02-wf", sa.WORKFLOWS, sa.ACTIVITIES) as w:
        yield w


def open_account(run, client, worker, amount=10, **kw):
    """A new account, its first workflow task done (the query waits for it)."""
    handle = run(es.send(client, unique("acct"), "deposit", payload(amount), task_queue=worker.task_queue, **kw))
    assert run(handle.query(SignalAccount.balance)) == amount
    return handle


def test_each_workflow_has_its_own_type_name():
    names = [w.__temporal_workflow_definition.name for w in sa.WORKFLOWS]
    assert names == ["SignalAccount", "AccountWithBadQueries"]


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
        sa.parse_payload("deposit", raw)


def test_parse_payload_accepts_the_documented_shape():
    assert sa.parse_payload("withdraw", payload(5, "r1")) == domain.Transaction("withdraw", 5, "r1")


# ---- C9: signals change state and return nothing; queries read and leave no trace --------------------------

def test_a_signal_returns_nothing_and_changes_the_state(run, client, worker):
    handle = open_account(run, client, worker, 10)
    assert run(handle.signal(SignalAccount.withdraw, payload(3))) is None  # a signal returns nothing
    state = run(handle.query(State))
    assert (state.balance, state.transactions, state.open) == (7, 2, True)


def test_queries_leave_no_trace_in_the_history(run, client, worker):
    handle = open_account(run, client, worker)
    length = run(es.history_length(handle))
    for _ in range(10):
        run(handle.query(State))
        run(handle.query(SignalAccount.balance))
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
    assert run(handle.query(SignalAccount.balance)) == 140, "the cached object did change"
    assert run(es.history_length(handle)) == length, "but nothing reached the history"
    replays = worker.replays(handle.id)
    run(worker.restart())  # empties the cache: the next query replays the history
    assert run(handle.query(SignalAccount.balance)) == 40
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
        run(handle.signal(SignalAccount.withdraw, payload(1000, "too-much")))
        run(handle.signal(SignalAccount.deposit, payload(5, "r1")))
        run(handle.signal(SignalAccount.deposit, payload(5, "r1")))  # duplicate request id
        state = run(handle.query(State))
    assert (state.balance, state.transactions, state.rejected, state.signals_received) == (15, 2, 8, 10)
    assert "already applied" in state.last_rejection
    reasons = [str(r) for r in run(handle.query(SignalAccount.recent_rejections))]
    assert any("unknown signal 'depositt'" in r for r in reasons) and any("one payload" in r for r in reasons)
    assert sum("rejected" in m for m in logs.messages) >= 8, logs.messages
    assert run(handle.query(SignalAccount.outcome, "too-much")).startswith("rejected: cannot withdraw 1000")
    assert run(handle.query(SignalAccount.outcome, "r1")) == "applied"
    assert run(handle.query(SignalAccount.outcome, "never-sent")) == ""
    assert "WorkflowTaskFailed" not in run(history.event_types(handle)), "no handler failed a workflow task"
    run(handle.signal(SignalAccount.deposit, payload(1)))
    assert run(handle.query(SignalAccount.balance)) == 16


# ---- C10: timers and cancellation ----------------------------------------------------------------------------

def test_the_idle_timer_closes_the_account(run, client, worker):
    handle = open_account(run, client, worker, 7, idle_close_after_s=1.0)
    run(asyncio.sleep(0.3))
    run(handle.signal(SignalAccount.deposit, payload(1)))  # restarts the timer
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
    w = WorkerController(client, task_queue=unique("test-nb02-stop"), workflows=sa.WORKFLOWS)
    run(w.start())
    handle = run(es.send(client, unique("acct"), "deposit", payload(1), task_queue=w.task_queue))
    run(handle.query(State))
    run(w.stop())
    for i in range(20):
        run(handle.signal(SignalAccount.deposit, payload(i + 1, f"offline-{i}")))
    assert run(history.event_types(handle)).count("WorkflowExecutionSignaled") == 21
    with pytest.raises(polling.GaveUp):
        run(es.state_until(handle, lambda s: True, timeout=1.0))
    run(w.start())
    state = run(handle.query(State))
    run(w.stop())
    assert (state.transactions, state.balance, state.rejected) == (21, 1 + 210, 0)


def test_the_experiment_workflows_have_their_own_type_names():
    import pkgutil
    import importlib
    import tutorial.workflows
    from tutorial.workflows import signal_handlers as sh
    mine = [w.__temporal_workflow_definition.name for w in sh.WORKFLOWS]
    assert mine == ["ReviewedAccount", "FragileAccount"]
    others = set()
    for module in pkgutil.iter_modules(tutorial.workflows.__path__):
        if module.name == "signal_handlers":
            continue
        loaded = importlib.import_module(f"tutorial.workflows.{module.name}")
        for value in vars(loaded).values():
            definition = getattr(value, "__temporal_workflow_definition", None)
            if definition is not None:
                others.add(definition.name)
    assert not others & set(mine)
