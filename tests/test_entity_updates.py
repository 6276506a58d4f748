"""Notebook 03's client side: update-with-start, signal-then-query, the form, the bad-update table, the
concurrent transfers (the lock), the side-by-side measurement and its chart, and the exercise solution."""

from __future__ import annotations

import uuid

import matplotlib
import pytest

from tutorial import entity_updates as eu
from tutorial import history, widgets
from tutorial.charts import updates as update_charts
from tutorial.polling import GaveUp
from temporalio.client import WorkflowUpdateFailedError
from tutorial.solutions.nb03_exercise import deposit_once
from tutorial.workflows import update_account as ua
from tutorial.workflows.domain import Transaction
from tutorial.workflows.update_account import Transfer, UpdateAccount
from tutorial.workshop import unique

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb03", ua.WORKFLOWS, ua.ACTIVITIES) as w:
        yield w


def new_account_id() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def open_account(run, client, worker, amount=100):
    balance, handle = run(eu.deposit_with_start(client, new_account_id(), amount, worker.task_queue))
    assert balance == amount
    return handle


def state(run, handle):
    return run(handle.query(UpdateAccount.account_state))


def test_update_with_start_creates_the_account_once_and_updates_return_results(run, client, worker):
    account_id = new_account_id()
    first, handle = run(eu.deposit_with_start(client, account_id, 100, worker.task_queue))
    second, again = run(eu.deposit_with_start(client, account_id, 50, worker.task_queue))
    assert (first, second) == (100, 150), "C14: each update returned the new balance"
    assert handle.result_run_id == again.result_run_id, "the second call used the running workflow"
    assert handle.id == eu.workflow_id(account_id)
    types = run(history.event_types(handle))
    assert types.count("WorkflowExecutionStarted") == 1
    assert types.count("WorkflowExecutionUpdateCompleted") == 2
    assert run(handle.execute_update(UpdateAccount.withdraw, 30)) == 120
    assert state(run, handle).balance == 120 and state(run, handle).transactions == 3


def test_signal_then_query_returns_the_account_that_shows_the_deposit(run, client, worker):
    eu.reset_outside_world()
    handle = open_account(run, client, worker, amount=10)
    for i in range(5):
        account, queries = run(eu.signal_then_query(handle, Transaction("deposit", 1, f"s{i}")))
        assert account.balance == 11 + i and f"s{i}" in account.applied and queries >= 1
    with pytest.raises(GaveUp, match="bad-one was not visible"):  # a rejected deposit never shows
        run(eu.signal_then_query(handle, Transaction("deposit", -3, "bad-one"), timeout=0.5))
    assert state(run, handle).balance == 15


def test_balance_reaches_waits_and_says_what_it_saw(run, client, worker):
    handle = open_account(run, client, worker, amount=10)
    assert run(eu.balance_reaches(handle, 10)).tries == 1
    with pytest.raises(GaveUp, match="the balance is 10, not 11"):
        run(eu.balance_reaches(handle, 11, timeout=0.3))


def test_try_updates_reports_rejections_and_failures_apart(run, client, worker):
    eu.reset_outside_world(delay_s=0.05)
    handle = open_account(run, client, worker, amount=150)
    rows = run(eu.try_updates(handle, [
        ("deposit -5", UpdateAccount.deposit, -5),
        ("withdraw 500", UpdateAccount.withdraw, 500),
        ("transfer to nobody", UpdateAccount.transfer, Transfer("nobody", 30, "t1")),
        ("deposit 5", UpdateAccount.deposit, 5),
    ]))
    assert [r["cause"] for r in rows] == ["InvalidAmount", "InsufficientFunds", "UnknownPayee", None]
    assert [r["events added"] for r in rows[:2]] == [0, 0]
    assert rows[2]["new events (without workflow tasks)"] == (
        "UpdateAccepted, ActivityTaskScheduled, ActivityTaskStarted, ActivityTaskFailed, UpdateCompleted")
    assert "must be positive" in rows[0]["message"] and "balance is 150" in rows[1]["message"]
    assert [r["message"].split(":")[0] for r in rows[:3]] == [eu.REJECTED, eu.REJECTED, eu.FAILED_AFTER_ACCEPTANCE]
    assert rows[3]["exception"] is None and "UpdateAccepted" in rows[3]["new events (without workflow tasks)"]
    assert state(run, handle).balance == 155


def test_concurrent_async_updates_lose_debits_without_the_lock_and_none_with_it(run, client, worker):
    eu.reset_outside_world(delay_s=0.2)
    n, steps = 6, []
    unsafe = run(eu.concurrent_transfers(client, UpdateAccount.transfer_unlocked, "u", worker.task_queue, n=n,
                                         step=lambda: steps.append(1)))
    assert len(steps) == n and unsafe.opening == 1000
    assert unsafe.paid == 10 * n and unsafe.debited < unsafe.paid and unsafe.lost > 0, unsafe.row()

    safe = run(eu.concurrent_transfers(client, UpdateAccount.transfer, "s", worker.task_queue, n=n))
    assert safe.paid == safe.debited == 10 * n and safe.lost == 0 and safe.account.transactions == n + 1
    assert sorted(safe.balances) == [1000 - 10 * k for k in range(n, 0, -1)]
    # the lock's guarantee: each transfer saw the debit of the one before it (no timing involved)
    assert len(set(safe.balances)) == n and min(safe.balances) == 1000 - 10 * n
    row = safe.row()
    assert row["lost"] == 0 and row["balances returned"] == sorted(safe.balances)
    for account in (unsafe, safe):
        run(account.handle.execute_update(UpdateAccount.close))


def test_measure_side_by_side_and_its_chart(run, client, worker):
    eu.reset_outside_world()
    n, steps = 8, []
    opened, handle = run(eu.deposit_with_start(client, new_account_id(), 1, worker.task_queue))
    request_account = new_account_id()
    result = run(eu.measure_side_by_side(client, handle, request_account, worker.task_queue, n=n,
                                         step=lambda: steps.append(1)))
    assert result.n == n == len(steps)
    assert result.update_results == [2 * i + 2 for i in range(n)]  # C14: each update returned its balance
    assert result.request_results == [i + 1 for i in range(n)] and all(q >= 1 for q in result.queries)
    assert {name: len(v) for name, v in result.latency_ms.items()} == {
        eu.UPDATE: n, eu.SIGNAL_QUERY: n, eu.PER_REQUEST: n}
    assert state(run, handle).balance == 1 + 2 * n and ua.database[request_account].balance == n
    summary = result.summary()
    assert list(summary["pattern"]) == [eu.UPDATE, eu.SIGNAL_QUERY, eu.PER_REQUEST]
    assert (summary["p95 ms"] >= summary["p50 ms"]).all() and (summary["p50 ms"] > 0).all()
    assert summary["calls per change"].iloc[1].startswith("1 signal + ")
    assert set(result.p50) == set(result.latency_ms)

    fig = update_charts.latency_cdf(result.latency_ms)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()][:3] == list(result.latency_ms)
    assert ax.get_xscale() == "log"
    matplotlib.pyplot.close(fig)
    run(handle.execute_update(UpdateAccount.close))


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
        assert "✖" in shown and "Workflow update failed" not in shown and "rejected or failed" not in shown
        assert any(word in shown for word in ("amount", "operation", "balance")), shown
        assert (eu.REJECTED in shown) == reaches_validator, shown  # the validator said no, and the answer says so
    assert form.sent == before[2] + 5
    assert state(run, handle) == before[0] and run(history.event_types(handle)) == before[1]


def test_a_failure_after_acceptance_is_told_apart_from_a_rejection(run, client, worker):
    """Both raise WorkflowUpdateFailedError; the history (UpdateAccepted, with the explicit update id) decides."""
    eu.reset_outside_world(delay_s=0.05)
    handle = open_account(run, client, worker, amount=100)
    with pytest.raises(eu.WorkbookError) as rejected:
        run(eu.submit(handle, "withdraw", 500))
    assert str(rejected.value).startswith("rejected by the validator: ") and "balance is 100" in str(rejected.value)

    async def transfer_to_nobody():
        update_id = unique("t")
        try:
            await handle.execute_update(UpdateAccount.transfer, Transfer("nobody", 30, "t-nobody"), id=update_id)
        except WorkflowUpdateFailedError as err:
            return await eu.was_accepted(handle, update_id), await eu.update_failure(handle, update_id, err)
    accepted, said = run(transfer_to_nobody())
    assert accepted and said.startswith("failed after it was accepted: ") and "UnknownPayee" in said
    assert not run(eu.was_accepted(handle, "no-such-update"))  # the check can say no
    run(handle.execute_update(UpdateAccount.close))


def test_the_form_opens_a_fresh_account_once_its_account_has_closed(run, client, worker):
    """After Run All the clean-up has closed the form's account: the next update opens a fresh one, with start."""
    handle = open_account(run, client, worker, amount=100)
    opened = []
    account = eu.FormAccount(client, handle, worker.task_queue, opened=opened)
    form = widgets.ActionForm("Send update", {"operation": "deposit", "amount": "25"}, account.submit,
                              parse=eu.parse_form)
    assert run(form.button.result()) == 125
    run(handle.execute_update(UpdateAccount.close))  # the clean-up cell
    run(handle.result())
    assert run(form.submit(operation="deposit", amount="25")) == 25  # a fresh account, with this deposit
    answer = widgets.answer_text(form.output)
    assert f"{handle.id} has closed" in answer and account.handle.id != handle.id and opened == [account.handle]
    assert run(form.submit(operation="withdraw", amount="30")) is None
    assert eu.REJECTED in widgets.answer_text(form.output)
    run(account.handle.execute_update(UpdateAccount.close))
    run(account.handle.result())
    assert run(form.submit(operation="withdraw", amount="5")) is None  # closed again: opened empty, then rejected
    assert eu.REJECTED in widgets.answer_text(form.output) and len(opened) == 2
    assert state(run, account.handle).open and state(run, account.handle).balance == 0  # update-with-start: not atomic
    run(account.handle.execute_update(UpdateAccount.close))


def test_without_an_open_account_the_plain_submit_says_closed(run, client, worker):
    """The counterfactual: without FormAccount, the click after the clean-up is an error."""
    handle = open_account(run, client, worker, amount=100)
    run(handle.execute_update(UpdateAccount.close))
    run(handle.result())
    form = widgets.ActionForm("Send update", {"operation": "deposit", "amount": "25"},
                              lambda **kw: eu.submit(handle, **kw), parse=eu.parse_form)
    assert run(form.button.result()) is None and "has closed" in widgets.answer_text(form.output)


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
