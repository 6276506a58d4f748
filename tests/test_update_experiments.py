"""Notebook 03's experiments on what an update guarantees (`tutorial.update_experiments`), each check run on
the real experiment and on a variant where the claim is false: C14 (a signal, an ACCEPTED-stage update),
C13 (an idle worker), update-with-start (a client that validates first)."""

from __future__ import annotations

import uuid

import pytest

from tutorial import entity_updates as eu
from tutorial import update_experiments as ux
from tutorial.worker import WorkerController
from tutorial.workflows import update_account as ua
from tutorial.workflows.domain import Transaction
from tutorial.workflows.update_account import UpdateAccount
from tutorial.workshop import unique


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb03-ux", ua.WORKFLOWS, ua.ACTIVITIES) as w:
        yield w


def new_account_id() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def balance(run, handle) -> int:
    return run(handle.query(UpdateAccount.account_state)).balance


def test_history_helpers_find_the_update_and_the_handled_signal(run, client, worker):
    _, handle = run(eu.deposit_with_start(client, new_account_id(), 10, worker.task_queue))
    run(handle.execute_update(UpdateAccount.deposit, 1, id="u-1"))
    run(handle.signal(UpdateAccount.deposit_signal, Transaction("deposit", 1, "s-1")))
    run(eu.balance_reaches(handle, 12))
    history = run(ux.events(handle))
    assert ux.update_completed(history, "u-1") and not ux.update_completed(history, "u-2")
    assert ux.signal_processed(history, "s-1") and not ux.signal_processed(history, "s-2")
    run(handle.execute_update(UpdateAccount.close))


def test_counterfactual_c14_a_signal_or_an_accepted_stage_is_not_synchronous(run, client, worker):
    eu.reset_outside_world(delay_s=1.0)  # the transfer's handler awaits the network for 1 s
    try:
        _, handle = run(eu.deposit_with_start(client, new_account_id(), 100, worker.task_queue))
        update = run(ux.change_and_look(handle, "update", 5, balance_before=100))
        assert ux.update_is_synchronous(update), update.row()
        assert update.returned == 105 == balance(run, handle)

        signal = run(ux.change_and_look(handle, "signal", 5, balance_before=105))
        assert signal.returned is None and not ux.update_is_synchronous(signal), signal.row()
        run(eu.balance_reaches(handle, 110))  # the signal's change comes, but the call did not say so

        accepted = run(ux.change_and_look(handle, "accepted", 40, balance_before=110))
        assert not accepted.done_at_return and not ux.update_is_synchronous(accepted), accepted.row()
        assert run(accepted.returned.result()) == 70  # the result came later, through the handle
    finally:
        eu.reset_outside_world()


def test_counterfactual_c14_a_signal_to_a_workflow_without_worker_changes_nothing_when_it_returns(run, client):
    w = WorkerController(client, task_queue=unique("test-nb03-ux-stop"), workflows=ua.WORKFLOWS,
                         activities=ua.ACTIVITIES)
    run(w.start())
    _, handle = run(eu.deposit_with_start(client, new_account_id(), 100, w.task_queue))
    run(w.stop())
    signal = run(ux.change_and_look(handle, "signal", 5, balance_before=100))
    assert signal.returned is None and signal.done_at_return is False and not ux.update_is_synchronous(signal)
    run(w.start())
    assert run(eu.balance_reaches(handle, 105)).value.balance == 105
    run(handle.execute_update(UpdateAccount.close))
    run(w.stop())


def test_change_and_look_refuses_an_unknown_way(run, client, worker):
    with pytest.raises(ValueError, match="update, signal or accepted"):
        run(ux.change_and_look(client.get_workflow_handle("nobody"), "email", 1, balance_before=0))


def test_a_rejected_first_deposit_leaves_an_empty_account_running_unless_the_client_checks_first(run, client, worker):
    left = run(ux.first_deposit_with_start(client, new_account_id(), -5, worker.task_queue))
    assert ux.left_an_empty_account_running(left), left.row()
    assert "InvalidAmount" in left.rejected and left.event_types[0] == "WorkflowExecutionStarted"
    assert left.rejected.startswith("rejected by the validator: ")
    # the fix "validate before": nothing sent, nothing started
    checked = run(ux.first_deposit_with_start(client, new_account_id(), -5, worker.task_queue, check_first=True))
    assert checked.status is None and checked.rejected.startswith("refused by the client")
    assert not ux.left_an_empty_account_running(checked)
    # a good first deposit: accepted, so not an empty account either
    good = run(ux.first_deposit_with_start(client, new_account_id(), 25, worker.task_queue, check_first=True))
    assert good.rejected is None and good.balance == 25 and not ux.left_an_empty_account_running(good)
    # the empty account is a valid one: a later deposit uses the same run
    again = run(ux.first_deposit_with_start(client, left.account_id, 25, worker.task_queue))
    assert again.balance == 25 and again.handle.id == left.handle.id
    assert again.event_types.count("WorkflowExecutionStarted") == 1
    for r in (left, good):
        run(r.handle.execute_update(UpdateAccount.close))


def test_counterfactual_c13_an_idle_worker_does_not_delay_updates(run, client):
    w = WorkerController(client, task_queue=unique("test-nb03-load"), workflows=[UpdateAccount, ua.BusyEntity],
                         max_concurrent_workflow_tasks=2)
    run(w.start())
    try:
        _, handle = run(eu.deposit_with_start(client, new_account_id(), 1, w.task_queue))
        steps: list[int] = []
        idle = run(ux.updates_under_load(client, handle, w.task_queue, slots=2, busy=0, n=4))
        loaded = run(ux.updates_under_load(client, handle, w.task_queue, slots=2, n=4, step=lambda: steps.append(1)))
        assert len(steps) == 4 and len(loaded.waited_s) == len(idle.waited_s) == 4 and loaded.busy == 2
        assert not ux.worker_load_delayed_updates(idle), idle.row()
        assert ux.worker_load_delayed_updates(loaded), loaded.row()
        assert loaded.median_wait_s > 10 * idle.median_wait_s
        assert balance(run, handle) == 1 + 8, "every deposit applied once"
        assert loaded.row()["worker"] == "2 slots, 2 busy workflows" and idle.row()["worker"] == "2 slots, idle"
        run(handle.execute_update(UpdateAccount.close))
    finally:
        run(w.stop())


def test_worker_load_check_needs_measurements():
    assert not ux.worker_load_delayed_updates(ux.LoadRun(2, 2, 0.5, [], []))
    assert ux.worker_load_delayed_updates(ux.LoadRun(2, 2, 0.5, [1.0], [0.25]))
    assert not ux.worker_load_delayed_updates(ux.LoadRun(2, 2, 0.5, [1.0], [0.24]))
