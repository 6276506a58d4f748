"""Notebook 05's C12 experiments and their checks, against the real dev server, each beside its counterfactual:
`lost_nothing` fails on the leaky entity's burst and holds on the safe one; `in_flight_update_answered` fails when
the run does not wait for its handlers; the entity's ledger recognises a retried update id that the server no
longer deduplicates after continue-as-new, and fails to when the ledger has forgotten it. And the exercise."""

from __future__ import annotations

import warnings

import pytest
from temporalio.workflow import UnfinishedUpdateHandlersWarning

from tutorial import rollover_experiments as rx
from tutorial.solutions import nb05_exercise
from tutorial.workflows import long_lived_account as lla
from tutorial.workflows.long_lived_account import LeakyAccount, SafeAccount


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb05-rx", lla.WORKFLOWS, lla.ACTIVITIES) as w:
        yield w


def test_counterfactual_c12_a_leaky_burst_loses_deposits_and_the_safe_one_loses_nothing(run, client, worker):
    with warnings.catch_warnings():  # the leaky run cuts off withdrawals in flight, and the SDK says so
        warnings.simplefilter("ignore", UnfinishedUpdateHandlersWarning)
        leaky = run(rx.burst_experiment(client, worker.task_queue, LeakyAccount, 300, 20, max_events=100))
    safe = run(rx.burst_experiment(client, worker.task_queue, SafeAccount, 300, 20, max_events=100))
    print("leaky:", leaky.line(), "| safe:", safe.line())
    assert not rx.lost_nothing(leaky), f"the check must see the leaky entity's losses: {leaky.line()}"
    assert leaky.audit.lost > 0 and leaky.final.balance < leaky.expected_balance
    assert rx.lost_nothing(safe), safe.line()


def test_lost_nothing_needs_a_continue_as_new_to_prove_anything(run, client, worker):
    one_run = run(rx.burst_experiment(client, worker.task_queue, LeakyAccount, 20, max_events=10_000))
    print("one run:", one_run.line())
    assert one_run.audit.lost == 0 and len(one_run.runs) == 1
    assert not rx.lost_nothing(one_run), "a burst that never crossed a continue-as-new proves nothing"


def test_counterfactual_c12_an_update_in_flight_fails_at_its_caller_unless_the_run_waits(run, client, worker):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        leaky = run(rx.update_in_flight(client, worker.task_queue, LeakyAccount))
        safe = run(rx.update_in_flight(client, worker.task_queue, SafeAccount))
    print("leaky:", leaky, "\nsafe:", safe)
    assert not rx.in_flight_update_answered(leaky), leaky
    assert leaky.error and "AcceptedUpdateCompletedWorkflow" in leaky.error and leaky.applied_times == 1
    assert rx.in_flight_update_answered(safe), safe
    assert sum(issubclass(w.category, UnfinishedUpdateHandlersWarning) for w in caught) == 1


def test_counterfactual_c12_a_ledger_that_forgot_the_request_id_takes_the_money_twice(run, client, worker):
    remembered = run(rx.update_id_across_runs(client, worker.task_queue))
    forgot = run(rx.update_id_across_runs(client, worker.task_queue, keep_ids=1))
    print("ledger keeps every id:", remembered.row(), "\nledger keeps one id:", forgot.row())
    for r in (remembered, forgot):  # the server's part is the same in both: per run
        assert rx.server_forgets_update_ids_across_runs(r), r.row()
        assert r.answers[0] == r.answers[1] == 90, "within a run the server answered the retry itself"
    assert rx.ledger_recognised_the_retry(remembered), remembered.row()
    assert not rx.ledger_recognised_the_retry(forgot), forgot.row()
    assert forgot.balance == forgot.expected_balance - 10, "the new run took the money a second time"


def test_the_exercise_solution_passes_the_check_and_the_naive_caller_does_not(run, client, worker):
    solved = run(rx.check_exercise(client, worker.task_queue, nb05_exercise.withdraw_safely))
    print("solution:", solved)
    assert solved == {"returned": 90, "balance": 90, "times in ledger": 1, "retries recognised": 1, "run": 2,
                      "SDK warnings": 1}

    async def naive(handle, txn):
        return await handle.execute_update("withdraw", txn, result_type=int)

    failed = run(rx.check_exercise(client, worker.task_queue, naive))
    print("naive:", failed)
    assert str(failed["returned"]).startswith("raised") and failed["balance"] == 90
