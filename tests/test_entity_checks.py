"""Notebook 02's checks for C9 and C10, each run on the real experiment and on a variant where the claim is false
(the counterfactual tests): the check must hold on the first and say no on the second."""

from __future__ import annotations

import asyncio

import pytest

from tutorial import entity_checks as ec
from tutorial import entity_signals as es
from tutorial.workflows import signal_account as sa
from tutorial.workflows import signal_handlers as sh
from tutorial.workflows.signal_account import AccountWithBadQueries, SignalAccount, payload
from tutorial.workshop import unique


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb02-checks", [*sa.WORKFLOWS, *sh.WORKFLOWS], [*sa.ACTIVITIES, *sh.ACTIVITIES]) as w:
        yield w


def open_account(run, client, worker, amount=10, **kw):
    handle = run(es.send(client, unique("acct"), "deposit", payload(amount), task_queue=worker.task_queue, **kw))
    assert run(handle.query(SignalAccount.balance)) == amount
    return handle


# ---- C9: a signal returns nothing ---------------------------------------------------------------------------

def test_payloads_in_counts_values_at_any_depth():
    from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionResponse
    response = UpdateWorkflowExecutionResponse()
    assert ec.payloads_in(response) == 0
    response.outcome.success.payloads.add(data=b"15")
    assert ec.payloads_in(response) == 1


def test_counterfactual_c9_an_update_returns_a_result_through_the_server(run, client, worker):
    handle = run(sh_open(client, worker))
    signal = run(ec.signal_raw(client, handle, "deposit", payload(5, "c9-sig")))
    update = run(ec.update_raw(client, handle, "deposit_now", 7))
    print(signal, update, sep="\n")
    assert signal.history_input == [payload(5, "c9-sig")] and "WorkflowExecutionSignaled" in signal.history_events
    assert ec.returned_nothing(signal), signal
    assert update.history_input == [7] and "WorkflowExecutionUpdateCompleted" in update.history_events
    assert update.response_payloads == 1 and update.history_results == 1
    assert not ec.returned_nothing(update), "an update's result comes back: the check must say no"
    run(handle.signal(sh.ReviewedAccount.close))


async def sh_open(client, worker):
    from tutorial.query_consistency import open_reviewed
    return await open_reviewed(client, unique("c9"), task_queue=worker.task_queue, review=False)


# ---- C9: a query's change does not last -------------------------------------------------------------------------

def test_counterfactual_c9_a_signal_s_change_survives_the_replay(run, client, worker):
    handle = open_account(run, client, worker, 40, workflow_class=AccountWithBadQueries)
    by_query = run(ec.change_then_replay(handle, worker, "query",
                                         lambda: handle.query(AccountWithBadQueries.balance_with_bonus)))
    print(by_query)
    assert ec.change_did_not_last(by_query), by_query
    by_signal = run(ec.change_then_replay(handle, worker, "signal",
                                          lambda: handle.signal(SignalAccount.deposit, payload(100))))
    print(by_signal)
    assert by_signal.history_after > by_signal.history_before and by_signal.after_replay == 140
    assert not ec.change_did_not_last(by_signal), "a signal's change is in the history: the check must say no"
    run(handle.signal(SignalAccount.close))


# ---- C10: the idle timer ------------------------------------------------------------------------------------

def test_counterfactual_c10_no_idle_time_means_no_timer_close(run, client, worker):
    idle = 1.0
    quiet = open_account(run, client, worker, 7, idle_close_after_s=idle)
    end = run(ec.ending(quiet))
    print(end)
    assert ec.closed_by_idle_timer(end, idle), end
    busy_idle = 3.0
    busy = open_account(run, client, worker, 7, idle_close_after_s=busy_idle)
    for _ in range(12):  # a deposit every 0.3 s for longer than the idle period: never quiet long enough
        run(busy.signal(SignalAccount.deposit, payload(1)))
        run(asyncio.sleep(0.3))
    run(busy.signal(SignalAccount.close))
    busy_end = run(ec.ending(busy))
    print(busy_end)
    assert busy_end.status == "COMPLETED" and busy_end.result.closed_reason == "closed by the owner"
    assert not ec.closed_by_idle_timer(busy_end, busy_idle), "no silence, no idle close: the check must say no"


# ---- C10: cancellation ----------------------------------------------------------------------------------------

def test_counterfactual_c10_a_terminated_workflow_was_not_cancelled(run, client, worker):
    cancelled = open_account(run, client, worker, 7)
    run(cancelled.cancel())
    end = run(ec.ending(cancelled))
    assert ec.cancelled_cleanly(end), end
    terminated = open_account(run, client, worker, 7)
    run(terminated.terminate("the counterfactual"))
    t_end = run(ec.ending(terminated))
    print(t_end)
    assert t_end.status == "TERMINATED" and t_end.result is None
    assert not ec.cancelled_cleanly(t_end), "terminate runs no workflow code: the check must say no"


# ---- C10: the history is the source of truth -------------------------------------------------------------------

def test_counterfactual_c10_state_the_history_never_heard_of_is_not_rebuilt(run, client, worker):
    honest = open_account(run, client, worker, 30)
    run(honest.signal(SignalAccount.deposit, payload(5)))
    before = run(honest.query(SignalAccount.state))
    replays = worker.replays(honest.id)
    run(worker.restart())
    after = run(honest.query(SignalAccount.state))
    assert ec.rebuilt_from_history(before, after, worker.replays(honest.id) - replays)
    bent = open_account(run, client, worker, 30, workflow_class=AccountWithBadQueries)
    run(bent.query(AccountWithBadQueries.balance_with_bonus))  # the cached state now holds 100 the history lacks
    before = run(bent.query(SignalAccount.state))
    replays = worker.replays(bent.id)
    run(worker.restart())
    after = run(bent.query(SignalAccount.state))
    print(before.balance, after.balance)
    assert not ec.rebuilt_from_history(before, after, worker.replays(bent.id) - replays)
    assert not ec.rebuilt_from_history(after, after, 0), "no replay happened: nothing was rebuilt"
    for h in (honest, bent):
        run(h.signal(SignalAccount.close))
