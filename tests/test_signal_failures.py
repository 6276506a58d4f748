"""Exceptions in a signal handler (issue 13, item 4), against the real dev server."""

from __future__ import annotations

import pytest

from tutorial import entity_signals as es
from tutorial import signal_failures as sf
from tutorial.workflows import signal_account as sa
from tutorial.workflows import signal_handlers as sh
from tutorial.workflows.signal_account import SignalAccount, payload
from tutorial.workshop import unique


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb02-fail", [*sa.WORKFLOWS, *sh.WORKFLOWS]) as w:
        yield w


def test_an_application_error_in_a_signal_handler_fails_the_workflow(run, client, worker):
    handle = run(sf.start_fragile(client, unique("fragile-app"), task_queue=worker.task_queue, raise_as="application"))
    r = run(sf.bad_signal(client, handle))
    print(r.status, r.types)
    assert sf.failed_the_workflow(r) and not sf.wedged_retrying(r)
    assert "whole number" in r.frame["summary"].iloc[-1]


def test_another_exception_fails_the_workflow_task_which_retries(run, client, worker):
    handle = run(sf.start_fragile(client, unique("fragile-plain"), task_queue=worker.task_queue, raise_as="plain"))
    r = run(sf.bad_signal(client, handle))
    print(r.status, r.task_attempt, r.types)
    run(handle.terminate("wedged: end of test"))
    assert sf.wedged_retrying(r) and not sf.failed_the_workflow(r)
    assert run(handle.describe()).status.name == "TERMINATED"


def test_an_account_that_rejects_bad_input_is_neither_failed_nor_wedged(run, client, worker):
    handle = run(es.send(client, unique("acct"), "deposit", payload(1), task_queue=worker.task_queue))
    run(handle.query(SignalAccount.balance))
    r = run(sf.bad_signal(client, handle))
    assert r.status == "RUNNING" and "WorkflowTaskFailed" not in r.types
    assert not sf.failed_the_workflow(r) and not sf.wedged_retrying(r)
    assert run(handle.query(SignalAccount.state)).rejected == 1
    run(handle.signal(SignalAccount.close))
