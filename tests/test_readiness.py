"""What a widget needs, restored after the clean-up cell: a stopped worker starts again, a closed entity is
replaced by a fresh one with a new id, and each says so in the click's answer."""

from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode

from tutorial import readiness, widgets
from tutorial.workflows.greeting import Counter, Greet, compose_greeting
from tutorial.worker import WorkerController
from tutorial.workshop import unique


def shown(output) -> str:
    return " ".join(o.get("data", {}).get("text/html", "") for o in output.outputs)


@pytest.fixture(scope="module")
def worker(run, client):
    w = WorkerController(client, task_queue=unique("test-readiness"), workflows=[Greet, Counter],
                         activities=[compose_greeting])
    yield w
    run(w.stop())


def test_a_stopped_worker_is_started_again_and_the_answer_says_so(run, client, worker):
    async def greet():
        return await client.execute_workflow(Greet.run, "Ann", id=unique("greet"), task_queue=worker.task_queue)

    run(worker.stop())
    button = widgets.ActionButton("Greet", greet, needs=[readiness.running_worker(worker)], timeout=20)
    assert run(button.result()) == "Hello, Ann!" and worker.running
    assert "started it again" in shown(button.output)
    button.task = None
    run(button.result())
    assert "started it again" not in shown(button.output), "a running worker is left alone, and nothing is said"


def test_without_the_need_the_same_click_times_out(run, client, worker):
    """The counterfactual: the need is what turns a click after the clean-up into a result."""
    async def greet():
        return await client.execute_workflow(Greet.run, "Ann", id=unique("greet"), task_queue=worker.task_queue)

    run(worker.stop())
    button = widgets.ActionButton("Greet", greet, timeout=1.5)
    assert run(button.result()) is None and "No answer within 1.5 s" in shown(button.output)
    run(worker.start())


def test_a_closed_entity_is_replaced_by_a_fresh_one_with_a_new_id(run, client, worker):
    run(worker.start())

    async def open_counter(workflow_id: str):
        return await client.start_workflow(Counter.run, id=workflow_id, task_queue=worker.task_queue)

    first = run(open_counter(unique("counter")))
    counter = readiness.Reopening(first, open_counter, prefix="counter", what="counter")

    async def add_one():
        return await counter.act(lambda h: h.signal(Counter.add, 1))

    button = widgets.ActionButton("add 1", add_one)
    run(button.result())
    assert counter.id == first.id and counter.reopened == [], "an open entity is used as it is"
    run(first.terminate("the clean-up cell"))
    button.task = None
    run(button.result())
    assert counter.id != first.id and counter.reopened == [counter.id]
    text = shown(button.output)
    assert "✔" in text and f"{first.id} has closed" in text and counter.id in text
    assert (run(counter.handle.describe())).status.name == "RUNNING"
    run(counter.handle.terminate())


def test_any_other_failure_is_not_mistaken_for_a_closed_entity(run, client):
    async def fails():
        raise RPCError("bad", RPCStatusCode.INVALID_ARGUMENT, b"")

    async def never(workflow_id):
        raise AssertionError("must not reopen")

    entity = readiness.Reopening(client.get_workflow_handle(unique("x")), never, prefix="x")
    with pytest.raises(RPCError):
        run(entity.act(lambda h: fails()))
    assert entity.reopened == []
