"""The workflows of notebook 00 and the setup check, against the real dev server: `Greet` returns its
activity's greeting, `Counter` adds its signals, answers the query, and finishes with the sum."""

from __future__ import annotations

from tutorial.history import event_types
from tutorial.worker import WorkerController
from tutorial.workflows.greeting import Counter, Greet, compose_greeting
from tutorial.workshop import unique


def make(client):
    return WorkerController(client, task_queue=unique("test-greeting"), workflows=[Greet, Counter],
                            activities=[compose_greeting])


def test_greet_returns_the_activitys_greeting(run, client):
    w = make(client)
    run(w.start())
    handle = run(client.start_workflow(Greet.run, "learner", id=unique("test-greet"), task_queue=w.task_queue))
    assert run(handle.result()) == "Hello, learner!"
    assert run(handle.describe()).workflow_type == "Greet"
    types = run(event_types(handle))
    assert types.count("ActivityTaskCompleted") == 1 and types[-1] == "WorkflowExecutionCompleted"
    run(w.stop())


def test_counter_adds_signals_answers_queries_and_finishes_with_the_sum(run, client):
    w = make(client)
    run(w.start())
    handle = run(client.start_workflow(Counter.run, id=unique("test-counter"), task_queue=w.task_queue))
    for amount in (1, 2, 3):
        run(handle.signal(Counter.add, amount))
    assert run(handle.query(Counter.current)) == 6
    assert run(handle.describe()).status.name == "RUNNING", "a counter stays open until told to finish"
    run(handle.signal(Counter.finish))
    assert run(handle.result()) == 6
    assert run(handle.describe()).workflow_type == "Counter"
    run(w.stop())
