"""Notebook 03's entity: updates return results, validators keep bad requests out of the history, a lock keeps
concurrent async handlers from losing money, and an update (unlike a signal) needs a worker to be accepted."""

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
from temporalio.exceptions import ApplicationError

from tutorial import entity_updates as eu
from tutorial import history, widgets
from tutorial.workflows.domain import Transaction
from tutorial.entity_updates import AccountEntity, DepositRequest, Transfer
from tutorial.solutions.nb03_exercise import deposit_once
from tutorial.worker import WorkerController
from tutorial.workshop import unique


@pytest.fixture(scope="module")
def worker(run, client):
    w = WorkerController(client, task_queue=unique("test-nb03"), workflows=eu.WORKFLOWS, activities=eu.ACTIVITIES)
    run(w.start())
    yield w
    run(w.stop())


def new_account_id() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def open_account(run, client, worker, amount=100):
    balance, handle = run(eu.deposit_with_start(client, new_account_id(), amount, worker.task_queue))
    assert balance == amount
    return handle


def state(run, handle):
    return run(handle.query(AccountEntity.account_state))


def test_update_with_start_creates_the_account_once_and_updates_return_results(run, client, worker):
    account_id = new_account_id()
    first, handle = run(eu.deposit_with_start(client, account_id, 100, worker.task_queue))
    second, again = run(eu.deposit_with_start(client, account_id, 50, worker.task_queue))
    assert (first, second) == (100, 150), "C14: each update returned the new balance"
    assert handle.result_run_id == again.result_run_id, "the second call used the running workflow"
    types = run(history.event_types(handle))
    assert types.count("WorkflowExecutionStarted") == 1
    assert types.count("WorkflowExecutionUpdateCompleted") == 2
    assert run(handle.execute_update(AccountEntity.withdraw, 30)) == 120
    assert state(run, handle).balance == 120 and state(run, handle).transactions == 3


def test_a_rejected_update_never_reaches_the_history(run, client, worker):
    handle = open_account(run, client, worker)
    before = run(history.event_types(handle))
    cases = [(AccountEntity.deposit, -5, "InvalidAmount", "must be positive"),
             (AccountEntity.deposit, 2_000_000, "InvalidAmount", "at most"),
             (AccountEntity.withdraw, 500, "InsufficientFunds", "balance is 100")]
    for update, amount, kind, words in cases:
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            run(handle.execute_update(update, amount))
        assert isinstance(caught.value.cause, ApplicationError) and caught.value.cause.type == kind
        text = eu.explain(caught.value)
        assert words in text and kind in text, text
    assert run(history.event_types(handle)) == before, "rejections leave no event at all"
    assert state(run, handle).balance == 100 and state(run, handle).transactions == 1


def test_a_handler_that_fails_after_acceptance_is_in_the_history(run, client, worker):
    eu.reset_outside_world(delay_s=0.05)
    handle = open_account(run, client, worker)
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        run(handle.execute_update(AccountEntity.transfer, Transfer("nobody", 30, "r1")))
    assert caught.value.cause.type == "UnknownPayee" and "UnknownPayee" in eu.explain(caught.value)
    frame = run(history.history_frame(handle))
    transfer_events = frame[frame["summary"].str.contains("transfer|payee", regex=True)]
    assert list(transfer_events["type"]) == ["WorkflowExecutionUpdateAccepted", "ActivityTaskScheduled",
                                             "ActivityTaskFailed", "WorkflowExecutionUpdateCompleted"]
    assert "update failed" in transfer_events["summary"].iloc[-1]
    assert state(run, handle).balance == 100, "the money stays when the payment fails"


def test_concurrent_async_updates_lose_debits_without_the_lock_and_none_with_it(run, client, worker):
    eu.reset_outside_world(delay_s=0.2)
    n = 6
    unsafe = open_account(run, client, worker, amount=1000)

    async def all_at_once(handle, update, prefix):
        return await asyncio.gather(*[handle.execute_update(update, Transfer("grocer", 10, f"{prefix}{i}"))
                                      for i in range(n)])

    run(all_at_once(unsafe, AccountEntity.transfer_unlocked, "u"))
    sent = sum(s[2] for s in eu.payment_network.sent_from(state(run, unsafe).account_id))
    debited = 1000 - state(run, unsafe).balance
    assert sent == 10 * n and debited < sent, (sent, debited)

    safe = open_account(run, client, worker, amount=1000)

    async def timed(i):
        started = time.perf_counter()
        balance = await safe.execute_update(AccountEntity.transfer, Transfer("grocer", 10, f"s{i}"))
        return balance, time.perf_counter() - started

    async def timed_all():
        return await asyncio.gather(*[timed(i) for i in range(n)])

    results = run(timed_all())
    account = state(run, safe)
    sent = sum(s[2] for s in eu.payment_network.sent_from(account.account_id))
    assert sent == 1000 - account.balance == 10 * n and account.transactions == n + 1
    assert sorted(b for b, _ in results) == [1000 - 10 * k for k in range(n, 0, -1)]
    waits = sorted(t for _, t in results)
    assert waits[-1] > 3 * waits[0], f"C13: the last transfer waited behind the others: {waits}"


def test_an_update_waits_for_a_worker_a_signal_does_not(run, client):
    w = WorkerController(client, task_queue=unique("test-nb03-stop"), workflows=eu.WORKFLOWS,
                         activities=eu.ACTIVITIES)
    run(w.start())
    handle = open_account(run, client, w)
    run(w.stop())

    started = time.perf_counter()
    run(handle.signal(AccountEntity.deposit_signal, Transaction("deposit", 5, "sig")))
    signal_s = time.perf_counter() - started
    assert "WorkflowExecutionSignaled" in run(history.event_types(handle)), "the signal is in the history"

    started = time.perf_counter()
    with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError) as caught:
        run(handle.execute_update(AccountEntity.deposit, 7, id="late", rpc_timeout=timedelta(seconds=1.5)))
    update_s = time.perf_counter() - started
    assert "no worker" in eu.explain(caught.value)
    with pytest.raises(WorkflowUpdateRPCTimeoutOrCancelledError):
        run(handle.start_update(AccountEntity.deposit, 8, wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                                rpc_timeout=timedelta(seconds=1)))
    assert update_s >= 1.4 and signal_s < update_s / 2, (signal_s, update_s)
    assert run(history.event_types(handle)).count("WorkflowExecutionUpdateAccepted") == 1, "only the opening deposit"

    run(w.start())
    late = handle.get_update_handle_for(AccountEntity.deposit, "late")
    assert run(asyncio.wait_for(late.result(), 20)) in (107, 112, 115, 120), "the caller gave up, not the server"
    for _ in range(100):  # the deposit of 8 may complete a moment after the deposit of 7
        if state(run, handle).balance == 120:
            break
        run(asyncio.sleep(0.1))
    assert state(run, handle).balance == 120, "the signal and both timed-out updates were applied"
    again = run(handle.execute_update(AccountEntity.deposit, 7, id="late"))
    assert again == run(late.result()) and state(run, handle).balance == 120, "same id: not applied twice"
    run(handle.execute_update(AccountEntity.close))
    assert run(handle.result()).open is False
    run(w.stop())


def test_accepted_returns_before_the_handler_finishes(run, client, worker):
    eu.reset_outside_world(delay_s=1.0)
    handle = open_account(run, client, worker)
    started = time.perf_counter()
    update = run(handle.start_update(AccountEntity.transfer, Transfer("landlord", 40, "rent"),
                                     wait_for_stage=WorkflowUpdateStage.ACCEPTED))
    accepted_s = time.perf_counter() - started
    types = run(history.event_types(handle))
    assert types[-2:] == ["WorkflowExecutionUpdateAccepted", "ActivityTaskScheduled"], types[-3:]
    assert run(update.result()) == 60
    completed_s = time.perf_counter() - started
    assert completed_s >= 1.0 and accepted_s < completed_s / 2, (accepted_s, completed_s)
    eu.reset_outside_world()


def test_signal_then_query_and_workflow_per_request_reach_the_same_rules(run, client, worker):
    eu.reset_outside_world()
    handle = open_account(run, client, worker, amount=10)
    for i in range(5):
        account, queries = run(eu.signal_then_query(handle, Transaction("deposit", 1, f"s{i}")))
        assert account.balance == 11 + i and queries >= 1
    run(handle.signal(AccountEntity.deposit_signal, Transaction("deposit", -3, "bad")))
    run(asyncio.sleep(0.3))
    assert state(run, handle).balance == 15 and len(run(handle.query(AccountEntity.ignored))) == 1
    frame = run(history.history_frame(handle))
    assert frame["summary"].str.contains('"amount": -3').any(), "a bad signal is in the history anyway"

    account_id = new_account_id()
    for i in range(3):
        balance = run(client.execute_workflow(DepositRequest.run, args=[account_id, Transaction("deposit", 5, f"w{i}")],
                                              id=unique("t-wpr"), task_queue=worker.task_queue))
        assert balance == 5 * (i + 1)
    assert eu.database[account_id].balance == 15


def test_the_form_lets_nothing_invalid_reach_state_or_history(run, client, worker):
    handle = open_account(run, client, worker)
    form = widgets.ActionForm("Send", {"operation": "deposit", "amount": "10"},
                              lambda **kw: eu.submit(handle, **kw), parse=eu.parse_form)
    assert run(form.submit(operation="deposit", amount="25")) == 125
    before = (state(run, handle), run(history.event_types(handle)), form.sent)
    bad = [("deposit", "abc", False), ("deposit", "", False), ("deposit", "1.5", False), ("transfer", "5", False),
           ("deposit", "-5", True), ("deposit", "0", True), ("deposit", "2,000,000", True),
           ("withdraw", "126", True), ("WITHDRAW", " 999_999 ", True)]
    for operation, amount, reaches_validator in bad:
        sent = form.sent
        assert run(form.submit(operation=operation, amount=amount)) is None
        assert form.sent == sent + reaches_validator, (operation, amount)
        shown = form.output.outputs[-1]["data"]["text/html"]
        assert "✖" in shown and "Workflow update failed" not in shown
        assert any(word in shown for word in ("amount", "operation", "balance")), shown
    assert form.sent == before[2] + 5
    assert state(run, handle) == before[0] and run(history.event_types(handle)) == before[1]


def test_the_exercise_solution_deposits_once(run, client, worker):
    handle = open_account(run, client, worker)
    request_id = unique("req")
    first = run(deposit_once(handle, 25, request_id))
    again = run(deposit_once(handle, 25, request_id))
    assert first == again == 125 and state(run, handle).transactions == 2


def test_parse_form():
    assert eu.parse_form({"operation": " Deposit ", "amount": "1,000"}) == {"operation": "deposit", "amount": 1000}
    assert eu.parse_form({"operation": "withdraw", "amount": "-5"})["amount"] == -5  # the validator's job
    with pytest.raises(ValueError, match="whole number"):
        eu.parse_form({"operation": "deposit", "amount": "ten"})
