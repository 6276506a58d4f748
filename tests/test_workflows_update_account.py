"""Notebook 03's entity, `UpdateAccount`: updates return results, validators keep bad requests out of the
history, a failure after acceptance is recorded, an update (unlike a signal) needs a worker to be accepted,
and `DepositRequest` keeps the same account in the stand-in database."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from temporalio.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from tutorial import entity_updates as eu
from tutorial import errors, history
from tutorial.worker import WorkerController
from tutorial.workflows import update_account as ua
from tutorial.workflows.domain import Transaction
from tutorial.workflows.update_account import DepositRequest, Transfer, UpdateAccount
from tutorial.workshop import unique


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb03-wf", ua.WORKFLOWS, ua.ACTIVITIES) as w:
        yield w


def new_account_id() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def open_account(run, client, worker, amount=100):
    balance, handle = run(eu.deposit_with_start(client, new_account_id(), amount, worker.task_queue))
    assert balance == amount
    return handle


def state(run, handle):
    return run(handle.query(UpdateAccount.account_state))


def test_workflow_type_names_are_their_own():
    assert [getattr(w, "__temporal_workflow_definition").name for w in ua.WORKFLOWS] == ["UpdateAccount", "DepositRequest"]


def test_the_experiment_workflows():
    names = [getattr(w, "__temporal_workflow_definition").name for w in (*ua.EXPERIMENT_WORKFLOWS, ua.FixedFeeAccount)]
    assert names == ["FeeAccount", "BusyEntity", "FeeAccount"], "the fix is the same workflow type"
    assert ua.FEES["card"] == 5


def test_a_busy_entity_holds_its_slot_once_per_task_and_stops_on_a_signal(run, client):
    w = WorkerController(client, task_queue=unique("test-nb03-busy"), workflows=[ua.BusyEntity])
    run(w.start())
    try:
        handle = run(client.start_workflow(ua.BusyEntity.run, 0.3, id=unique("t-busy"), task_queue=w.task_queue))
        started = time.perf_counter()
        for _ in range(3):
            run(handle.signal(ua.BusyEntity.more))
        run(asyncio.sleep(0.1))
        run(handle.signal(ua.BusyEntity.stop))
        tasks = run(handle.result())
        assert 1 <= tasks <= 3 and time.perf_counter() - started >= 0.3 * tasks, tasks
        idle = run(client.start_workflow(ua.BusyEntity.run, 5.0, id=unique("t-busy"), task_queue=w.task_queue))
        run(idle.signal(ua.BusyEntity.stop))
        assert run(idle.result()) == 0, "no work asked, no slot held"
    finally:
        run(w.stop())


def test_a_rejected_update_never_reaches_the_history(run, client, worker):
    handle = open_account(run, client, worker)
    before = run(history.event_types(handle))
    cases = [(UpdateAccount.deposit, -5, "InvalidAmount", "must be positive"),
             (UpdateAccount.deposit, 2_000_000, "InvalidAmount", "at most"),
             (UpdateAccount.withdraw, 500, "InsufficientFunds", "balance is 100")]
    for update, amount, kind, words in cases:
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            run(handle.execute_update(update, amount))
        assert isinstance(caught.value.cause, ApplicationError) and caught.value.cause.type == kind
        text = errors.explain(caught.value)
        assert words in text and kind in text, text
        # the lesson module's own explain() said exactly this; errors.explain now says it once for everyone
        assert text == f"Update failed: {errors.explain(caught.value.cause)}"
    assert run(history.event_types(handle)) == before, "rejections leave no event at all"
    assert state(run, handle).balance == 100 and state(run, handle).transactions == 1


def test_a_handler_that_fails_after_acceptance_is_in_the_history(run, client, worker):
    eu.reset_outside_world(delay_s=0.05)
    handle = open_account(run, client, worker)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        run(handle.execute_update(UpdateAccount.transfer, Transfer("nobody", 30, "r1")))
    cause = caught.value.cause
    assert cause.type == "UnknownPayee" and "UnknownPayee" in errors.explain(caught.value)
    assert cause.non_retryable and "nobody" in cause.message
    frame = run(history.history_frame(handle))
    transfer_events = frame[frame["summary"].str.contains("transfer|payee", regex=True)]
    assert list(transfer_events["type"]) == ["WorkflowExecutionUpdateAccepted", "ActivityTaskScheduled",
                                             "ActivityTaskFailed", "WorkflowExecutionUpdateCompleted"]
    assert "update failed" in transfer_events["summary"].iloc[-1]
    assert state(run, handle).balance == 100, "the money stays when the payment fails"


def test_a_transfer_failing_for_no_business_reason_fails_as_payment_failed(run, client, worker):
    """The activity crashes (not a business "no"): after its 3 attempts the update fails as PaymentFailed."""
    handle = open_account(run, client, worker)
    ua.payment_network.delay_s = "not a number"  # asyncio.sleep raises TypeError: a crash, retried, then given up
    try:
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            run(handle.execute_update(UpdateAccount.transfer, Transfer("grocer", 30, "crash")))
    finally:
        eu.reset_outside_world()
    cause = caught.value.cause
    assert cause.type == "PaymentFailed" and cause.non_retryable and cause.message.startswith("payment failed:")
    assert state(run, handle).balance == 100 and ua.payment_network.sent_from(state(run, handle).account_id) == []


def test_a_business_failure_inside_the_handler_fails_only_the_update(run, client, worker):
    """Funds are checked again after acceptance; the failure is the rule's own, BENIGN and not retryable."""
    eu.reset_outside_world(delay_s=1.0)  # the second transfer is accepted while the first awaits the network
    handle = open_account(run, client, worker, amount=50)
    first = run(handle.start_update(UpdateAccount.transfer, Transfer("grocer", 40, "a"),
                                    wait_for_stage=WorkflowUpdateStage.ACCEPTED))
    second = run(handle.start_update(UpdateAccount.transfer, Transfer("grocer", 40, "b"),
                                     wait_for_stage=WorkflowUpdateStage.ACCEPTED))
    assert run(first.result()) == 10
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        run(second.result())  # validated against 50, but ran after the first debit, under the lock
    cause = caught.value.cause
    assert cause.type == "InsufficientFunds" and cause.non_retryable
    assert cause.category == ApplicationErrorCategory.BENIGN
    assert state(run, handle).balance == 10 and state(run, handle).open, "the workflow itself carries on"
    eu.reset_outside_world()


def test_an_update_waits_for_a_worker_a_signal_does_not(run, client):
    w = WorkerController(client, task_queue=unique("test-nb03-stop"), workflows=ua.WORKFLOWS,
                         activities=ua.ACTIVITIES)
    run(w.start())
    handle = open_account(run, client, w)
    run(w.stop())

    started = time.perf_counter()
    run(handle.signal(UpdateAccount.deposit_signal, Transaction("deposit", 5, "sig")))
    signal_s = time.perf_counter() - started
    assert "WorkflowExecutionSignaled" in run(history.event_types(handle)), "the signal is in the history"

    started = time.perf_counter()
    with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError) as caught:
        run(handle.execute_update(UpdateAccount.deposit, 7, id="late", rpc_timeout=timedelta(seconds=1.5)))
    update_s = time.perf_counter() - started
    assert "no worker" in errors.explain(caught.value)
    with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError):
        run(handle.start_update(UpdateAccount.deposit, 8, wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                                rpc_timeout=timedelta(seconds=1)))
    assert update_s >= 1.4 and signal_s < update_s / 2, (signal_s, update_s)
    assert run(history.event_types(handle)).count("WorkflowExecutionUpdateAccepted") == 1, "only the opening deposit"

    run(w.start())
    late = handle.get_update_handle_for(UpdateAccount.deposit, "late")
    assert run(asyncio.wait_for(late.result(), 20)) in (107, 112, 115, 120), "the caller gave up, not the server"
    # the deposit of 8 may complete a moment after the deposit of 7
    assert run(eu.balance_reaches(handle, 120)).value.balance == 120, "the signal and both timed-out updates"
    again = run(handle.execute_update(UpdateAccount.deposit, 7, id="late"))
    assert again == run(late.result()) and state(run, handle).balance == 120, "same id: not applied twice"
    run(handle.execute_update(UpdateAccount.close))
    assert run(handle.result()).open is False
    run(w.stop())


def test_accepted_returns_before_the_handler_finishes(run, client, worker):
    eu.reset_outside_world(delay_s=1.0)
    handle = open_account(run, client, worker)
    started = time.perf_counter()
    update = run(handle.start_update(UpdateAccount.transfer, Transfer("landlord", 40, "rent"),
                                     wait_for_stage=WorkflowUpdateStage.ACCEPTED))
    accepted_s = time.perf_counter() - started
    types = run(history.event_types(handle))
    assert types[-2:] == ["WorkflowExecutionUpdateAccepted", "ActivityTaskScheduled"], types[-3:]
    assert run(update.result()) == 60
    completed_s = time.perf_counter() - started
    assert completed_s >= 1.0 and accepted_s < completed_s / 2, (accepted_s, completed_s)
    eu.reset_outside_world()


def test_a_bad_signal_is_recorded_and_ignored_and_workflow_per_request_uses_the_database(run, client, worker):
    eu.reset_outside_world()
    handle = open_account(run, client, worker, amount=10)
    run(handle.signal(UpdateAccount.deposit_signal, Transaction("deposit", -3, "bad")))
    run(handle.signal(UpdateAccount.deposit_signal, Transaction("deposit", 5, "good")))
    assert run(eu.balance_reaches(handle, 15)).value.balance == 15
    assert len(run(handle.query(UpdateAccount.ignored))) == 1
    frame = run(history.history_frame(handle))
    assert frame["summary"].str.contains('"amount": -3').any(), "a bad signal is in the history anyway"

    account_id = new_account_id()
    for i in range(3):
        balance = run(client.execute_workflow(DepositRequest.run, args=[account_id, Transaction("deposit", 5, f"w{i}")],
                                              id=unique("t-wpr"), task_queue=worker.task_queue))
        assert balance == 5 * (i + 1)
    assert ua.database[account_id].balance == 15
    with pytest.raises(Exception) as caught:  # the rule's "no" fails the request workflow, not retried
        run(client.execute_workflow(DepositRequest.run, args=[account_id, Transaction("withdraw", 99, "w-big")],
                                    id=unique("t-wpr"), task_queue=worker.task_queue))
    assert "InsufficientFunds" in errors.explain(caught.value)
    assert ua.database[account_id].balance == 15
