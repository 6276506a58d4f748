"""Notebook 05's long-lived account, against the real dev server: the history grows with every message, the
server suggests continue-as-new from 4,096 events, `LeakyAccount` loses buffered deposits and cuts off an update
in flight, `SafeAccount` loses nothing, `ThresholdOnlyAccount` ignores the server's suggestion.

The burst proof: at least 1,000 deposit signals and concurrent withdrawal updates across at least five runs of
one entity, audited by request id: nothing lost, nothing applied twice. The claims' own checks and their
counterfactuals: tests/test_rollover_experiments.py (C12) and tests/test_update_limits.py (C15).
"""

from __future__ import annotations

import inspect
import warnings

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UnfinishedUpdateHandlersWarning

from tutorial import continue_as_new as can
from tutorial import rollover_experiments as rx
from tutorial import limits
from tutorial.workflows import long_lived_account as lla
from tutorial.workflows.domain import Transaction
from tutorial.workflows.long_lived_account import HistoryGrower, LeakyAccount, SafeAccount, ThresholdOnlyAccount
from tutorial.workshop import unique


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb05-wf", lla.WORKFLOWS, lla.ACTIVITIES) as w:
        yield w


def start(run, client, worker, entity, **handover):
    workflow_id = unique(f"test-{entity.__name__.lower()}")
    opening = handover.pop("opening_balance", 0)
    return run(client.start_workflow(entity.run, can.new_account(workflow_id[-40:], opening, **handover),
                                     id=workflow_id, task_queue=worker.task_queue))


def test_workflow_type_names_are_their_own():
    assert [getattr(w, "__temporal_workflow_definition").name for w in lla.WORKFLOWS] == \
        ["LeakyAccount", "SafeAccount", "ThresholdOnlyAccount", "HistoryGrower"]


def test_every_message_grows_the_history_and_the_workflow_can_read_it(run, client, worker):
    handle = start(run, client, worker, SafeAccount, max_events=0)  # 0: never continue-as-new by length
    samples = run(can.watch_growth(handle, steps=3, per_step=10))
    lengths = [s["history length"] for s in samples]
    sizes = [s["history bytes"] for s in samples]
    print("history length after 0, 10, 20, 30 deposits:", lengths, "bytes:", sizes)
    assert all(b - a >= 10 for a, b in zip(lengths, lengths[1:])), "each signal is at least one event"
    assert all(b > a for a, b in zip(sizes, sizes[1:]))
    assert not any(s["suggested"] for s in samples) and samples[-1]["run"] == 1 and samples[-1]["balance"] == 30
    run(handle.signal(SafeAccount.close_account))
    assert run(handle.result()).transactions == 30


def test_the_server_suggests_continue_as_new_from_4096_events(run, client, worker):
    suggest = limits.HISTORY_EVENTS_SUGGEST.value
    seen = run(client.execute_workflow(HistoryGrower.run, args=[suggest, 5, 12_000],
                                       id=unique("test-grower"), task_queue=worker.task_queue))
    not_yet = [length for length, suggested in seen if not suggested]
    first = next(length for length, suggested in seen if suggested)
    print(f"not suggested at {max(not_yet)} events, suggested at {first} events")
    assert max(not_yet) < suggest <= first < suggest + 20
    assert first < limits.HISTORY_EVENTS_WARN.value < limits.HISTORY_EVENTS_MAX.value


def test_the_leaky_entity_loses_buffered_deposits_in_a_burst(run, client, worker):
    exp = run(rx.burst_experiment(client, worker.task_queue, LeakyAccount, 300, max_events=100))
    delivered = sum(r.deposits_delivered for r in exp.runs)
    print("leaky burst:", exp.line(), f"(the server delivered {delivered})")
    assert delivered == exp.audit.sent, "the server delivered every signal to some run"
    assert exp.audit.lost > 0, "the deposits in the inbox at continue-as-new are gone"
    assert exp.audit.processed + exp.audit.lost == exp.audit.sent and exp.audit.duplicated == 0
    assert exp.final.balance == 1_000 + exp.audit.processed < exp.expected_balance
    assert sum(r.carried_in for r in exp.runs) == 0, "the leaky entity never hands anything over"


def test_the_safe_entity_loses_nothing_in_a_burst_of_1000_signals_and_concurrent_updates(run, client, worker):
    exp = run(rx.burst_experiment(client, worker.task_queue, SafeAccount, 1_000, 100, max_events=100))
    a = exp.audit
    print(f"\nBURST sent {a.sent}, processed {a.processed}, lost {a.lost}, duplicated {a.duplicated}, "
          f"runs {len(exp.runs)}, seconds {exp.seconds:.1f}")
    print(can.chain_frame(exp.runs).drop(columns=["first_execution_run_id"]).to_string(index=False))
    assert a.sent == 1_100 and a.processed == a.sent and a.lost == 0 and a.duplicated == 0
    assert len(exp.runs) >= 5, "the burst spans at least five runs"
    assert exp.burst.update_errors == [] and len(exp.burst.update_results) == 100, "every withdrawal answered"
    assert exp.final.balance == exp.expected_balance and exp.final.transactions == a.sent
    assert {r.first_execution_run_id for r in exp.runs} == {exp.runs[0].run_id}, "one chain, one first run"
    assert [r.run_number for r in exp.runs] == list(range(1, len(exp.runs) + 1))
    carried = sum(r.carried_out for r in exp.runs)
    assert carried > 0 and carried == sum(r.carried_in for r in exp.runs), "what one run hands over, the next takes"
    assert sum(r.deposits_delivered for r in exp.runs) == 1_000


def test_withdrawals_alone_cross_the_demo_threshold(run, client, worker):
    exp = run(rx.burst_experiment(client, worker.task_queue, SafeAccount, 0, 20, max_events=60, atm_callers=1))
    events = sum(r.events for r in exp.runs)
    print("updates only:", exp.line(), f"({events / 20:.1f} events per withdrawal)")
    assert len(exp.runs) >= 2 and all(r.deposits_delivered == 0 for r in exp.runs)
    assert all(r.events < 60 + 15 for r in exp.runs), "each run closed soon after its history passed 60 events"
    assert sum(r.updates_accepted for r in exp.runs) == 20 and events >= 20 * 4
    assert exp.audit.lost == 0 and exp.audit.duplicated == 0 and exp.burst.update_errors == []
    assert exp.final.balance == 1_000 - 20


def test_an_update_in_flight_fails_at_its_caller_when_the_run_does_not_wait(run, client, worker):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        leaky = run(rx.update_in_flight(client, worker.task_queue, LeakyAccount))
    unfinished = [w for w in caught if issubclass(w.category, UnfinishedUpdateHandlersWarning)]
    print("leaky:", leaky, "| warning:", str(unfinished[0].message)[:90] if unfinished else None)
    assert leaky.result is None and "AcceptedUpdateCompletedWorkflow" in leaky.error
    assert unfinished and "withdraw" in str(unfinished[0].message)
    assert leaky.run_number_after == 2 and leaky.balance_after == 90 and leaky.applied_times == 1, \
        "the caller got an error, yet the money moved"


def test_an_update_in_flight_completes_when_the_run_waits_for_handlers(run, client, worker):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        safe = run(rx.update_in_flight(client, worker.task_queue, SafeAccount))
    print("safe:", safe)
    assert safe.error is None and safe.result == 90 and safe.balance_after == 90 and safe.applied_times == 1
    assert safe.run_number_after == 2
    assert not [w for w in caught if issubclass(w.category, UnfinishedUpdateHandlersWarning)]


def test_the_client_talks_to_the_entity_by_workflow_id_across_runs(run, client, worker):
    handle = start(run, client, worker, SafeAccount, max_events=1_000)
    first_run = run(handle.describe()).run_id
    run(handle.signal(SafeAccount.set_max_events, 40))
    run(handle.signal(SafeAccount.roll_over))
    status = run(can.wait_until_idle(handle))
    assert status.run_number == 2 and status.first_execution_run_id == first_run and status.run_id != first_run
    assert status.max_events == 40, "the threshold travelled in the handover"
    pinned = client.get_workflow_handle(handle.id, run_id=first_run)
    with pytest.raises(RPCError) as err:
        run(pinned.signal(SafeAccount.deposit, Transaction("deposit", 5, "pinned")))
    assert err.value.status == RPCStatusCode.NOT_FOUND, "a closed run takes no more signals"
    by_id = client.get_workflow_handle(handle.id)
    run(by_id.signal(SafeAccount.deposit, Transaction("deposit", 5, "by-id")))
    assert run(can.wait_until_idle(by_id)).balance == 5
    run(by_id.signal(SafeAccount.close_account))
    assert run(handle.result()).applied == ("by-id",)


def test_a_refused_withdrawal_is_rejected_by_the_validator(run, client, worker):
    handle = start(run, client, worker, SafeAccount, opening_balance=5)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        run(handle.execute_update(SafeAccount.withdraw, Transaction("withdraw", 50, "too-much")))
    assert "cannot withdraw 50" in str(err.value.cause)
    run(handle.signal(SafeAccount.close_account))
    assert run(handle.result()).balance == 5


def test_a_retried_withdrawal_is_recognised_and_a_refused_deposit_is_recorded(run, client, worker):
    handle = start(run, client, worker, SafeAccount, opening_balance=100)
    txn = Transaction("withdraw", 10, "atm-once")
    first = run(handle.execute_update(SafeAccount.withdraw, txn))
    again = run(handle.execute_update(SafeAccount.withdraw, txn))  # the same request id: a retry
    run(handle.signal(SafeAccount.deposit, Transaction("deposit", 0, "zero")))  # the rules refuse it
    status = run(can.wait_until_idle(handle))
    print("withdrawal answered", first, "then", again, "|", status)
    assert first == again == 90 and status.balance == 90 and status.duplicates_ignored == 1
    assert status.rejected == 1 and run(handle.query(SafeAccount.ledger)) == ["atm-once"]
    run(handle.signal(SafeAccount.close_account))
    assert run(handle.result()).transactions == 1


def test_an_update_the_rules_refuse_after_validation_fails_as_a_business_failure():
    entity = lla.AccountEntity(can.new_account("unit", 5))  # the handlers' state, no workflow running
    with pytest.raises(ApplicationError) as err:  # an update: its caller gets the rule's own error type
        entity._apply(Transaction("withdraw", 50, "too-much"), raise_errors=True)
    assert err.value.type == "InsufficientFunds" and err.value.non_retryable and "cannot withdraw 50" in str(err.value)
    assert entity._apply(Transaction("withdraw", 50, "too-much")) == 5  # a signal: recorded, the account unchanged
    assert entity.rejected == ["too-much: cannot withdraw 50: balance is 5"] and entity.processed_this_run == 0


def test_deposit_now_is_a_synchronous_update_with_a_validator(run, client, worker):
    handle = start(run, client, worker, SafeAccount, opening_balance=5, max_events=0)
    assert run(handle.execute_update(SafeAccount.deposit_now, Transaction("deposit", 7, "teller-1"))) == 12
    assert run(handle.execute_update(SafeAccount.deposit_now, Transaction("deposit", 7, "teller-1"))) == 12
    with pytest.raises(WorkflowUpdateFailedError) as err:
        run(handle.execute_update(SafeAccount.deposit_now, Transaction("withdraw", 1, "teller-2")))
    assert "takes deposits" in str(err.value.cause)
    status = run(can.wait_until_idle(handle))
    assert status.balance == 12 and status.duplicates_ignored == 1
    run(handle.signal(SafeAccount.close_account))
    assert run(handle.result()).applied == ("teller-1",)


def test_the_threshold_only_entity_ignores_the_servers_suggestion_but_keeps_its_own_rule(run, client, worker):
    assert "is_continue_as_new_suggested" not in inspect.getsource(ThresholdOnlyAccount.should_continue_as_new)
    handle = start(run, client, worker, ThresholdOnlyAccount, max_events=30)
    for i in range(10):
        run(handle.signal(ThresholdOnlyAccount.deposit, Transaction("deposit", 1, f"t{i}")))
        run(can.wait_until_idle(handle))
    status = run(can.wait_until_idle(handle))
    assert status.run_number >= 2 and status.balance == 10, "its own threshold still rolls it over, losing nothing"
    run(handle.signal(ThresholdOnlyAccount.close_account))
    assert run(handle.result()).transactions == 10
