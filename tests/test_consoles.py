"""The consoles, driven as a learner would (real clicks on the session loop, a real worker and server)."""

from __future__ import annotations

import asyncio

from tutorial import errors, readiness, widgets
from tutorial.consoles import AccountConsole
from tutorial.worker import WorkerController
from tutorial.workflows import signal_account as sa
from tutorial.workflows.signal_account import SignalAccount
from tutorial.workshop import unique


def click(run, button):
    """Click an ActionButton on the session loop (as a learner would) and wait for what it did."""
    async def go():
        return await button.click()
    return run(go())


def answer(button) -> str:
    return widgets.answer_text(button.output)


def test_the_account_console_sends_signals_and_shows_queries(run, client):
    w = WorkerController(client, task_queue=unique("test-nb02-ui"), workflows=sa.WORKFLOWS)
    run(w.start())
    console = AccountConsole(client, unique("ui"), task_queue=w.task_queue, query_timeout=1.0)
    text = run(console.form.submit(operation="deposit", amount="25"))
    assert "applied" in text and console.last_state.balance == 25 and "25" in console.view.value
    assert run(console.form.submit(operation="withdraw", amount="lots")) is None  # parse refused: nothing sent
    assert console.form.sent == 1 and "whole number" in errors.explain(console.form.last_error)
    assert "1 more rejected" in click(run, console.bad_button)
    assert "events" in click(run, console.history_button)
    assert "WorkflowExecutionSignaled" in console.history_view.value and "<table" in console.history_view.value
    assert "nan" not in console.history_view.value  # the house table style
    run(w.stop())
    said = click(run, console.refresh_button)
    assert isinstance(said, widgets.Caution) and said.startswith("no answer") and "No answer" in console.view.value
    assert "⚠" in answer(console.refresh_button) and "✔" not in answer(console.refresh_button)
    sent = run(console.form.submit(operation="deposit", amount="5"))
    assert isinstance(sent, widgets.Caution) and "not applied yet" in sent  # kept by the server
    run(w.start())
    assert run(console.refresh()).balance == 30, "the deposit sent while the worker was stopped is applied now"
    assert "closed" in click(run, console.close_button)
    assert console.last_state.open is False
    run(w.stop())


def test_every_answer_lands_in_one_row_below_the_buttons(client):
    console = AccountConsole(client, unique("ui"), task_queue="unused")
    rows = console.widget.children
    assert [b.description for b in rows[1].children] == ["Close account", "Send a bad payload", "Refresh view",
                                                         "Show history"]
    assert all(isinstance(b, type(console.close_button.button)) for b in rows[0].children[-1:] + rows[1].children)
    outputs = {id(b.output) for b in (console.form.button, console.close_button, console.bad_button,
                                      console.refresh_button, console.history_button)}
    assert outputs == {id(console.messages)} and rows[2] is console.messages  # no answer beside a button


def test_after_the_clean_up_the_console_starts_the_worker_and_opens_a_fresh_account(run, client):
    """What Run All leaves (account closed, worker stopped), then the clicks a learner makes."""
    w = WorkerController(client, task_queue=unique("test-nb02-ui-after"), workflows=sa.WORKFLOWS)
    run(w.start())
    console = AccountConsole(client, unique("ui"), task_queue=w.task_queue, query_timeout=3.0,
                             needs=[readiness.running_worker(w)], prefix="ui")
    run(console.form.submit(operation="deposit", amount="10"))
    first = console.handle
    run(first.signal(SignalAccount.close, "end of notebook 02"))  # the clean-up cell
    run(asyncio.wait_for(first.result(), 20))
    run(w.stop())

    refreshed = click(run, console.refresh_button)  # the final state is still readable; says so
    assert "has closed" in refreshed and "Send opens a new account" in refreshed and w.running
    assert "started it again" in answer(console.refresh_button)
    sent = run(console.form.submit(operation="deposit", amount="10"))
    assert "applied" in sent and not isinstance(sent, widgets.Caution)
    assert console.account_id != first.id and console.account.reopened == [console.account_id]
    assert f"{first.id} has closed" in answer(console.form.button) and console.last_state.open
    assert console.account_id in console.view.value  # the view says which account it shows
    assert "more rejected" in click(run, console.bad_button)
    assert console.account_id in click(run, console.history_button)
    assert "closed" in click(run, console.close_button)
    run(asyncio.wait_for(console.handle.result(), 20))
    assert isinstance(click(run, console.close_button), widgets.Caution)  # closing twice: said, not an error
    bad = click(run, console.bad_button)  # a closed account: a fresh, empty one takes the bad payload
    assert "1 rejected" in bad and len(console.account.reopened) == 2
    run(console.handle.signal(SignalAccount.close))
    run(w.stop())


def test_without_the_need_the_console_has_no_answer_after_the_clean_up(run, client):
    """The counterfactual: the worker need is what turns the click into a result."""
    w = WorkerController(client, task_queue=unique("test-nb02-ui-noneed"), workflows=sa.WORKFLOWS)
    console = AccountConsole(client, unique("ui"), task_queue=w.task_queue, query_timeout=1.0)
    sent = run(console.form.submit(operation="deposit", amount="10"))
    assert isinstance(sent, widgets.Caution) and "⚠" in answer(console.form.button)
    run(console.handle.terminate("test done"))
