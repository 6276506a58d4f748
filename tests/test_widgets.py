"""The widget kit: a click runs the action once, errors become one short red line, bad input sends nothing."""

from __future__ import annotations

import asyncio
import time

import ipywidgets

from tutorial import widgets
from tutorial.workflows import domain
from tutorial.workflows.greeting import Counter, Greet, compose_greeting
from tutorial.workshop import unique
from tutorial.worker import WorkerController


def shown(output) -> str:
    return " ".join(o.get("data", {}).get("text/html", "") for o in output.outputs)


def test_a_click_runs_the_action_and_shows_its_result(run):
    async def scenario():
        calls = []

        async def action():
            calls.append(1)
            await asyncio.sleep(widgets.BUSY_AFTER_S * 3)
            return "forty-two"

        button = widgets.ActionButton("Go", action)
        first = button.click()
        second = button.click()  # a quick double click while the first still runs
        assert first is second
        await asyncio.sleep(widgets.BUSY_AFTER_S * 1.5)
        assert button.button.disabled and button.button.description == "Go …", "a slow action shows it is busy"
        assert await button.result() == "forty-two"
        return calls, button

    calls, button = run(scenario())
    assert calls == [1], "a double click must not run the action twice"
    assert "forty-two" in shown(button.output) and not button.button.disabled


class Sent:
    """Counts the state messages widgets send to the front end (each trait change is one, in a kernel)."""

    def __init__(self, monkeypatch):
        self.messages: list[tuple[str, tuple[str, ...]]] = []
        original = ipywidgets.Widget._send

        def counting(widget, msg, buffers=None):
            self.messages.append((type(widget).__name__, tuple(sorted(msg.get("state", {})))))
            return original(widget, msg, buffers=buffers)

        monkeypatch.setattr(ipywidgets.Widget, "_send", counting)


def test_a_fast_click_sends_one_widget_message_its_answer(run, monkeypatch):
    """Issue 18: a 10 ms update paid six widget messages (disable, "…", clear, answer, enable, label); now one."""
    clicks = iter(range(100))

    async def action():
        return f"quick {next(clicks)}"  # each answer differs (an identical one sends nothing at all)

    form = widgets.ActionForm("Deposit", {"amount": "1"}, lambda amount: action(),
                              parse=lambda v: {"amount": domain.parse_amount(v["amount"])})
    run(form.submit(amount="1"))
    sent = Sent(monkeypatch)
    for i in range(1, 4):
        assert run(form.submit(amount="1")) == f"quick {i}"
    assert sent.messages == [("Output", ("outputs",))] * 3, sent.messages
    assert len(form.output.outputs) == 1 and "quick 3" in shown(form.output)


def test_counterfactual_a_slow_click_shows_busy_and_sends_more(run, monkeypatch):
    """The check above would fail for an action slower than BUSY_AFTER_S: it shows its busy state (one message
    for the button, one to clear the answer), then its answer and the button back."""
    async def slow():
        await asyncio.sleep(widgets.BUSY_AFTER_S * 2)
        return "slow"

    button = widgets.ActionButton("Go", slow)
    widgets.message(button.output, "an earlier answer")
    sent = Sent(monkeypatch)
    assert run(button.result()) == "slow"
    assert sent.messages == [("Button", ("description", "disabled")), ("Output", ("outputs",)),
                             ("Output", ("outputs",)), ("Button", ("description", "disabled"))], sent.messages
    assert len(button.output.outputs) == 1 and "slow" in shown(button.output)
    assert not button.button.disabled and button.button.description == "Go"


def test_progress_redraws_at_most_every_tenth_of_a_second(monkeypatch):
    bar = widgets.Progress(10_000, "work")
    sent = Sent(monkeypatch)
    for _ in range(10_000):
        bar.step()
    assert bar.bar.value == 10_000 and bar.label.value.startswith("10000 / 10000")
    assert len(sent.messages) <= 2 * (10 * (time.perf_counter() - bar.started) + 2), len(sent.messages)


def test_result_runs_the_action_once_when_nobody_clicked(run):
    async def action():
        return 7

    button = widgets.ActionButton("Go", action)
    assert run(button.result()) == 7 and button.clicks == 1


def test_a_failing_action_shows_one_short_line_and_the_button_works_again(run, client):
    async def query_nobody():
        return await client.get_workflow_handle(unique("nobody")).query(Counter.current)

    button = widgets.ActionButton("Query", query_nobody)
    assert run(button.result()) is None
    text = shown(button.output)
    assert "Not found" in text and "Traceback" not in text and "✖" in text
    assert not button.button.disabled and button.last_error is not None


def test_a_form_rejects_bad_input_before_sending_anything(run):
    sent = []

    async def deposit(amount):
        sent.append(amount)
        return f"deposited {amount}"

    form = widgets.ActionForm("Deposit", {"amount": "10"}, deposit,
                              parse=lambda v: {"amount": domain.parse_amount(v["amount"])})
    for bad in ("", "ten", "-5", "1.5"):
        assert run(form.submit(amount=bad)) is None
        assert "amount" in shown(form.output)
    assert sent == [] and form.sent == 0
    assert run(form.submit(amount="25")) == "deposited 25" and sent == [25]


def test_worker_panel_buttons_start_and_stop_the_worker(run, client):
    worker = WorkerController(client, task_queue=unique("panel"), workflows=[Greet], activities=[compose_greeting])
    panel = widgets.worker_panel(worker)
    run(panel.buttons["Start worker"].result())
    assert worker.running and "RUNNING" in panel.children[1].value
    run(client.execute_workflow(Greet.run, "Ed", id=unique("greet"), task_queue=worker.task_queue))
    panel.buttons["Stop worker"].task = None
    run(panel.buttons["Stop worker"].result())
    assert not worker.running and "STOPPED" in panel.children[1].value


def test_progress_reaches_its_total():
    bar = widgets.Progress(10, "work")
    for _ in range(10):
        bar.step()
    bar.finish()
    assert bar.bar.value == 10 and bar.bar.bar_style == "success"


def test_an_action_that_waits_forever_is_given_up_with_a_message(run):
    async def wait_for_a_stopped_worker():
        await asyncio.sleep(3600)

    button = widgets.ActionButton("Wait", wait_for_a_stopped_worker, timeout=0.2)
    assert run(button.result()) is None
    assert "No answer within 0.2 s" in shown(button.output) and not button.button.disabled
    assert isinstance(button.last_error, widgets.TookTooLong)

    sender = widgets.ActionButton("Send", wait_for_a_stopped_worker, timeout=0.2, on_timeout=widgets.HELD_BY_SERVER)
    assert run(sender.result()) is None
    text = shown(sender.output)
    assert "stored in the server" in text and "Do not send it again" in text, "a request that waits is not lost"


def test_a_timeout_inside_the_action_is_its_own_message_not_the_buttons(run):
    async def gives_up_itself():
        raise asyncio.TimeoutError()

    button = widgets.ActionButton("Go", gives_up_itself, timeout=5, on_timeout="THE BUTTON'S")
    assert run(button.result()) is None
    assert "THE BUTTON'S" not in shown(button.output) and "Timed out" in shown(button.output)


def test_each_click_replaces_the_previous_message(run):
    results = iter(["first", "second"])

    async def action():
        return next(results)

    button = widgets.ActionButton("Go", action)
    run(button.result())
    button.task = None
    run(button.result())
    assert len(button.output.outputs) == 1 and "second" in shown(button.output)


def test_a_caution_is_not_shown_as_a_success(run):
    async def nobody_answered():
        return widgets.Caution("no answer to the query yet")

    button = widgets.ActionButton("Ask", nobody_answered)
    run(button.result())
    text = shown(button.output)
    assert "⚠" in text and "✔" not in text and "no answer to the query yet" in text


def test_needs_run_before_the_action_and_their_notes_join_the_answer(run):
    order = []

    async def need():
        order.append("need")
        widgets.note("started the thing again")

    async def action():
        order.append("action")
        return "done it"

    button = widgets.ActionButton("Go", action, needs=[need])
    assert run(button.result()) == "done it" and order == ["need", "action"]
    text = shown(button.output)
    assert "done it" in text and "started the thing again" in text
    button.task = None
    run(button.result())
    assert shown(button.output).count("started the thing again") == 1, "each click shows only its own notes"


def test_a_form_tried_with_bad_input_can_be_left_ready(run):
    form = widgets.ActionForm("Deposit", {"amount": "10"}, lambda amount: asyncio.sleep(0, f"got {amount}"),
                              parse=lambda v: {"amount": domain.parse_amount(v["amount"])})
    assert run(form.submit(amount="ten")) is None and "✖" in shown(form.output)
    form.ready()
    text = shown(form.output)
    assert "✖" not in text and "ready" in text and "Deposit" in text


def test_the_panel_follows_the_worker_wherever_it_is_started_or_stopped(run, client):
    worker = WorkerController(client, task_queue=unique("panel-follow"), workflows=[Greet], activities=[compose_greeting])
    panel = widgets.worker_panel(worker)
    assert "STOPPED" in panel.children[1].value
    run(worker.start())  # a cell, not the panel
    assert "RUNNING" in panel.children[1].value
    run(worker.stop())
    assert "STOPPED" in panel.children[1].value
    run(panel.buttons["Start worker"].result())
    text = shown(panel.children[2])
    assert "started" in text and "RUNNING" not in text, "the status shows once: in the status line"
    run(worker.stop())
