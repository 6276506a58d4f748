"""The instructor's console against a real dev server of its own: the table and the stuck list follow the room,
and nothing is terminated before the confirming click (nor after a bad name, a failed plan or a stale one)."""

from __future__ import annotations

import pytest

from tutorial import room, room_console, widgets
from tutorial.polling import until
from tutorial.room_console import RoomConsole
from tutorial.workflows.greeting import Counter
from tutorial.workshop import unique


@pytest.fixture(scope="module")
def client(own_server_client):
    """A server of its own: the clean-up of "everyone" must not end another test file's workflows."""
    return own_server_client


@pytest.fixture()
def demo(run, client):
    played = run(room.play_demo(client))
    run(until(lambda: room.survey(client), lambda r: set(room.DEMO_LEARNERS) <= set(r.learners)
              and r.learners["demo-bo"].open["nb00"] >= 1, timeout=10))
    yield played
    run(room.cleanup(client, run(room.plan_cleanup(client, "everyone"))))


async def _status(handle) -> str:
    return (await handle.describe()).status.name


def test_refresh_shows_who_is_here_and_who_is_stuck_only_while_stuck(run, client, demo):
    console = RoomConsole(client, waiting_s=1)

    async def scenario():
        await until(lambda: room.survey(client, learner="demo-bo", waiting_s=1), lambda r: r.is_stuck("demo-bo"),
                    timeout=15)
        first = await widgets.click_and_read(console.refresh_button)
        stuck_then, table_then = console.stuck_view.value, console.view.value
        async with demo.bo_worker():
            await demo.bo_greet.result()
        second = await widgets.click_and_read(console.refresh_button)
        return first, stuck_then, table_then, second, console.stuck_view.value, console.view.value

    first, stuck_then, table_then, second, stuck_now, table_now = run(scenario())
    assert first.startswith("✔") and "demo-ada, demo-bo" in first and "stuck: demo-bo" in first, first
    assert demo.bo_greet.id in stuck_then and "no worker has polled it" in stuck_then
    assert demo.ada_account.id not in stuck_then, "an idle open account is not stuck"
    assert "nb00 ✔ · nb02 … 1 open" in table_then and "nb00 … 1 open" in table_then
    assert "stuck: nobody" in second and demo.bo_greet.id not in stuck_now and "nobody is stuck" in stuck_now
    assert table_now.count("nb00 ✔") == 2, "demo-bo's notebook 00 finished once a worker took its task"


def test_clean_up_terminates_only_after_the_confirming_click(run, client, demo):
    console = RoomConsole(client)

    async def scenario():
        await console.cleanup_form.submit(learner="demo-ada")
        planned = widgets.answer_text(console.messages)
        before_confirm = await _status(demo.ada_account)
        confirmed = await widgets.click_and_read(console.confirm_button)
        after = await _status(demo.ada_account), await _status(demo.bo_greet)
        again = await widgets.click_and_read(console.confirm_button)
        return planned, before_confirm, confirmed, after, again

    planned, before_confirm, confirmed, after, again = run(scenario())
    assert planned.startswith("✔ 1 open workflow(s) of demo-ada's would be terminated") and "Confirm" in planned
    assert before_confirm == "RUNNING", "Clean up alone terminated something"
    assert confirmed.startswith("✔ terminated 1 open workflow(s) of demo-ada's"), confirmed
    assert after == ("TERMINATED", "RUNNING"), "demo-bo's workflow was touched by demo-ada's clean-up"
    assert again.startswith("✖ Nothing to confirm"), "one confirmation terminated twice"


def test_bad_names_a_failed_plan_and_a_stale_plan_touch_nothing(run, client, demo, monkeypatch):
    console = RoomConsole(client)

    async def open_count() -> int:
        return len([w async for w in client.list_workflows('ExecutionStatus = "Running"')])

    async def scenario():
        before = await open_count()
        await console.cleanup_form.submit(learner="nb01")
        bad_name, sent = widgets.answer_text(console.messages), console.cleanup_form.sent
        await console.cleanup_form.submit(learner="zed")
        nobody = widgets.answer_text(console.messages)
        await console.cleanup_form.submit(learner="demo-ada")  # a plan shown, then replaced by a failed one
        await console.cleanup_form.submit(learner="zed")
        replaced = await widgets.click_and_read(console.confirm_button)
        await console.cleanup_form.submit(learner="demo-bo")
        monkeypatch.setattr(room_console, "PLAN_TTL_S", 0.0)
        stale = await widgets.click_and_read(console.confirm_button)
        return before, bad_name, sent, nobody, replaced, stale, await open_count()

    before, bad_name, sent, nobody, replaced, stale, after = run(scenario())
    assert bad_name.startswith("✖ 'nb01' is not a learner's name") and sent == 0, bad_name
    assert nobody.startswith("✖ No learner 'zed' on this server (here: ") and "demo-ada" in nobody, nobody
    assert replaced.startswith("✖ Nothing to confirm"), replaced
    assert stale.startswith("✖ The plan is over 0 s old") and "Nothing terminated" in stale, stale
    assert after == before >= 2


def test_counterfactual_a_clean_up_of_everyone_ends_every_learner_s_open_workflows_and_no_stranger_s(run, client, demo):
    console = RoomConsole(client)

    async def scenario():
        stranger = await client.start_workflow(Counter.run, id=unique("x").replace("-x-", "-elsewhere-"),
                                               task_queue="not-a-learners-queue")
        planned, confirmed = await console.clean_up("everyone")
        statuses = [await _status(h) for h in (demo.ada_account, demo.bo_greet, stranger)]
        await stranger.terminate()
        return planned, confirmed, statuses

    planned, confirmed, statuses = run(scenario())
    assert "2 open workflow(s) of every learner's" in planned, planned
    assert confirmed.startswith("✔ terminated 2"), confirmed
    assert statuses == ["TERMINATED", "TERMINATED", "RUNNING"], statuses
