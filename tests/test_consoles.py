"""The consoles, driven as a learner would (real clicks on the session loop, a real worker and server)."""

from __future__ import annotations

from tutorial import errors
from tutorial.consoles import AccountConsole
from tutorial.worker import WorkerController
from tutorial.workflows import signal_account as sa
from tutorial.workshop import unique


def click(run, button):
    """Click an ActionButton on the session loop (as a learner would) and wait for what it did."""
    async def go():
        return await button.click()
    return run(go())


def test_the_account_console_sends_signals_and_shows_queries(run, client):
    w = WorkerController(client, task_queue=unique("test-nb02-ui"), workflows=sa.WORKFLOWS)
    run(w.start())
    console = AccountConsole(client, unique("ui"), task_queue=w.task_queue, query_timeout=1.0)
    text = run(console.form.submit(operation="deposit", amount="25"))
    assert "applied" in text and console.last_state.balance == 25 and "25" in console.view.value
    assert run(console.form.submit(operation="withdraw", amount="lots")) is None  # parse refused: nothing sent
    assert console.form.sent == 1 and "whole number" in errors.explain(console.form.last_error)
    assert "1 more rejected" in click(run, console.bad_button)
    frame_html = click(run, console.history_button)
    assert "WorkflowExecutionSignaled" in frame_html.data
    run(w.stop())
    assert click(run, console.refresh_button).startswith("no answer") and "No answer" in console.view.value
    assert "not applied yet" in run(console.form.submit(operation="deposit", amount="5"))  # kept by the server
    run(w.start())
    assert run(console.refresh()).balance == 30, "the deposit sent while the worker was stopped is applied now"
    click(run, console.close_button)
    assert console.last_state.open is False
    run(w.stop())
