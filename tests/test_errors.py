"""Every failure a learner can meet becomes one short sentence."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from tutorial.workflows.greeting import Counter
from tutorial.errors import explain
from tutorial.server import WorkbookError
from tutorial.workshop import unique


def test_a_query_to_a_missing_workflow_says_not_found(run, client):
    with pytest.raises(RPCError) as err:
        run(client.get_workflow_handle(unique("nobody")).query(Counter.current))
    text = explain(err.value)
    assert text.startswith("Not found") and "\n" not in text


def test_plain_errors_are_one_line():
    assert explain(WorkbookError("Do X.")) == "Do X."
    assert explain(asyncio.TimeoutError()).startswith("Timed out")
    assert explain(ValueError("amount must be positive")) == "amount must be positive"  # no "ValueError:" prefix
    assert explain(RPCError("gone", RPCStatusCode.UNAVAILABLE, b"")).startswith("The Temporal server is not reachable")


def test_a_failed_workflow_says_what_the_workflow_said(run, client):
    from tutorial.workflows.greeting import Greet
    from tutorial.worker import WorkerController

    w = WorkerController(client, task_queue=unique("errors"), workflows=[Greet])  # no activity registered
    run(w.start())
    try:
        with pytest.raises(WorkflowFailureError) as err:
            run(client.execute_workflow(Greet.run, "x", id=unique("greet"), task_queue=w.task_queue,
                                        execution_timeout=__import__("datetime").timedelta(seconds=3)))
        text = explain(err.value)
        assert text.startswith("Workflow failed:") and "Workflow execution failed" not in text, text
    finally:
        run(w.stop())


def test_a_failed_update_says_what_the_handler_said():
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import ApplicationError

    err = WorkflowUpdateFailedError(ApplicationError("cannot withdraw 50: balance is 10", type="InsufficientFunds"))
    assert explain(err) == "Update failed: cannot withdraw 50: balance is 10 (InsufficientFunds)"  # not "rejected or"


def test_a_query_nobody_answers_says_no_worker(run, client):
    from datetime import timedelta

    from tutorial.workflows.greeting import Counter

    handle = run(client.start_workflow(Counter.run, id=unique("lonely"), task_queue=unique("no-worker")))
    with pytest.raises(RPCError) as err:
        run(handle.query(Counter.current, rpc_timeout=timedelta(seconds=1)))
    assert explain(err.value).startswith("No worker answered in time"), explain(err.value)
    run(handle.terminate())


def test_a_reused_id_says_so(run, client):
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from tutorial.workflows.greeting import Counter

    workflow_id, queue = unique("twice"), unique("no-worker")
    handle = run(client.start_workflow(Counter.run, id=workflow_id, task_queue=queue))
    with pytest.raises(WorkflowAlreadyStartedError) as err:
        run(client.start_workflow(Counter.run, id=workflow_id, task_queue=queue))
    assert workflow_id in explain(err.value) and "already exists" in explain(err.value)
    run(handle.terminate())


def test_a_query_nobody_can_answer_and_a_full_query_buffer_in_plain_words():
    from temporalio.service import RPCError, RPCStatusCode

    from tutorial.errors import explain

    no_poller = RPCError("no poller seen for task queue recently, worker may be down", RPCStatusCode.FAILED_PRECONDITION, b"")
    full = RPCError("consistent query buffer is full, cannot accept new consistent queries", RPCStatusCode.RESOURCE_EXHAUSTED, b"")
    assert explain(no_poller).startswith("No worker has asked this task queue for work lately")
    assert explain(full).startswith("Another query is already waiting")
    other = RPCError("something else", RPCStatusCode.FAILED_PRECONDITION, b"")
    assert explain(other).startswith("Server said FAILED_PRECONDITION")


def test_a_signal_to_a_closed_workflow_says_it_has_closed(run, client):
    from tutorial.workflows.greeting import Counter

    handle = run(client.start_workflow(Counter.run, id=unique("closed"), task_queue=unique("no-worker")))
    run(handle.terminate())
    with pytest.raises(RPCError) as err:
        run(handle.signal(Counter.add, 1))
    assert explain(err.value).startswith("That workflow has closed"), explain(err.value)


def test_an_update_that_timed_out_says_it_waits_in_the_server_and_not_to_resend():
    from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

    text = explain(WorkflowUpdateRPCTimeoutOrCancelledError())
    assert "waits in the server" in text and "Do not send it again" in text and "same update id" in text
