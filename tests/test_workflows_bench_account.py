"""The benchmark's workflows: `DepositOnce` (workflow-per-request, the account in the stand-in database) and
`BenchAccount` (the entity: signal or update to deposit, query to read, `close` to finish), on a real worker."""

from __future__ import annotations

import time
import uuid

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tutorial.workflows import bench_account as ba
from tutorial.workflows.bench_account import BenchAccount, DepositOnce


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-bench-wf", ba.WORKFLOWS, ba.ACTIVITIES) as w:
        yield w


def new_id(kind: str) -> str:
    return f"t-bench-{kind}-{uuid.uuid4().hex[:8]}"


def open_account(run, client, worker, handler_ms: float = 0.0):
    account_id = new_id("account")
    return run(client.start_workflow(BenchAccount.run, args=[account_id, handler_ms], id=account_id,
                                     task_queue=worker.task_queue))


def test_workflow_type_names_are_their_own():
    assert [getattr(w, "__temporal_workflow_definition").name for w in ba.WORKFLOWS] == ["DepositOnce",
                                                                                         "BenchAccount"]


def test_each_request_is_a_workflow_that_updates_the_database(run, client, worker):
    account_id = new_id("db")
    balances = [run(client.execute_workflow(DepositOnce.run, args=[account_id, amount], id=new_id("deposit"),
                                            task_queue=worker.task_queue)) for amount in (5, 7)]
    assert balances == [5, 12]
    assert ba.DATABASE[account_id].balance == 12 and ba.DATABASE[account_id].transactions == 2


def test_the_entity_takes_signals_and_updates_and_closes_with_its_balance(run, client, worker):
    handle = open_account(run, client, worker)
    run(handle.signal(BenchAccount.deposit_signal, 3))
    assert run(handle.execute_update(BenchAccount.deposit, 4)) == 7  # the update sees the signal before it
    state = run(handle.query(BenchAccount.state))
    assert state.balance == 7 and state.transactions == 2
    run(handle.signal(BenchAccount.close))
    assert run(handle.result()) == 7


def test_a_bad_deposit_is_refused_by_the_validator_and_ignored_by_the_signal(run, client, worker):
    handle = open_account(run, client, worker)
    with pytest.raises(WorkflowUpdateFailedError):
        run(handle.execute_update(BenchAccount.deposit, -5))
    run(handle.signal(BenchAccount.deposit_signal, -5))  # already in the history: it can only be ignored
    assert run(handle.execute_update(BenchAccount.deposit, 1)) == 1
    assert run(handle.query(BenchAccount.state)).transactions == 1
    run(handle.signal(BenchAccount.close))
    assert run(handle.result()) == 1


def test_handler_ms_makes_every_handler_that_slow(run, client, worker):
    handle = open_account(run, client, worker, handler_ms=150)
    run(handle.execute_update(BenchAccount.deposit, 1))  # the first task, started and cached
    started = time.perf_counter()
    run(handle.execute_update(BenchAccount.deposit, 1))
    assert time.perf_counter() - started >= 0.15
    run(handle.signal(BenchAccount.close))
    assert run(handle.result()) == 2
