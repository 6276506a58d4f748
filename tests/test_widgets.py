"""The widget kit: a click runs the action once, errors become one short red line, bad input sends nothing."""

from __future__ import annotations

import asyncio

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
            await asyncio.sleep(0.05)
            return "forty-two"

        button = widgets.ActionButton("Go", action)
        first = button.click()
        second = button.click()  # a quick double click while the first still runs
        assert first is second and button.button.disabled
        assert await button.result() == "forty-two"
        return calls, button

    calls, button = run(scenario())
    assert calls == [1], "a double click must not run the action twice"
    assert "forty-two" in shown(button.output) and not button.button.disabled


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
    assert "Timed out" in shown(button.output) and not button.button.disabled


def test_each_click_replaces_the_previous_message(run):
    results = iter(["first", "second"])

    async def action():
        return next(results)

    button = widgets.ActionButton("Go", action)
    run(button.result())
    button.task = None
    run(button.result())
    assert len(button.output.outputs) == 1 and "second" in shown(button.output)
