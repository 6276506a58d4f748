"""History as a table, a chart and a link; the server's view of a waiting task."""

from __future__ import annotations

import asyncio

import matplotlib

matplotlib.use("Agg")

from tutorial import history
from tutorial.charts import history as history_charts
from tutorial.workflows.greeting import Counter, Greet, compose_greeting
from tutorial.workshop import unique
from tutorial.worker import WorkerController


def test_history_frame_reads_like_the_story(run, client):
    w = WorkerController(client, task_queue=unique("hist"), workflows=[Greet, Counter], activities=[compose_greeting])
    run(w.start())
    handle = run(client.start_workflow(Greet.run, "Cy", id=unique("greet"), task_queue=w.task_queue))
    run(handle.result())
    frame = run(history.history_frame(handle))
    assert list(frame.columns) == ["id", "time", "ms", "type", "category", "summary"]
    types = list(frame["type"])
    assert types[0] == "WorkflowExecutionStarted" and types[-1] == "WorkflowExecutionCompleted"
    assert "ActivityTaskScheduled" in types
    summaries = dict(zip(frame["type"], frame["summary"]))
    assert summaries["WorkflowExecutionStarted"].startswith('Greet("Cy")')
    assert summaries["ActivityTaskScheduled"] == 'compose_greeting("Cy")'
    assert summaries["WorkflowExecutionCompleted"] == 'result "Hello, Cy!"'
    assert w.identity in summaries["WorkflowTaskStarted"]
    fig = history_charts.timeline(frame)
    assert len(fig.axes[0].collections) == len(frame)
    assert history.ui_url(handle.id, handle.result_run_id).endswith("/history")
    run(w.stop())


def test_signals_show_in_history_and_later_tasks_go_to_the_sticky_queue(run, client):
    w = WorkerController(client, task_queue=unique("hist"), workflows=[Counter])
    run(w.start())
    handle = run(client.start_workflow(Counter.run, id=unique("counter"), task_queue=w.task_queue))
    from tutorial.replay import settle

    run(settle(handle))  # the first task is done: signals now make new tasks (sent earlier, they join the first)
    run(handle.signal(Counter.add, 5))
    run(settle(handle))
    run(handle.signal(Counter.finish))
    run(handle.result())
    frame = run(history.history_frame(handle))
    assert "signal add(5)" in list(frame["summary"])
    scheduled = frame[frame["type"] == "WorkflowTaskScheduled"]["summary"].tolist()
    assert "sticky" not in scheduled[0] and any("sticky" in s for s in scheduled[1:])
    run(w.stop())


def test_pending_task_and_pollers_show_a_task_waiting_for_a_worker(run, client):
    queue = unique("no-worker")
    handle = run(client.start_workflow(Greet.run, "Di", id=unique("greet"), task_queue=queue))
    state = run(history.pending_task(client, handle))
    assert state["status"] == "RUNNING" and state["task waiting"] and state["task state"] == "SCHEDULED"
    assert run(history.pollers(client, queue)) == []
    run(handle.terminate("test over"))


def test_a_failed_workflow_task_names_its_cause():
    from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
    from temporalio.api.history.v1 import HistoryEvent, WorkflowTaskFailedEventAttributes

    event = HistoryEvent(event_id=5, event_type=EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                         workflow_task_failed_event_attributes=WorkflowTaskFailedEventAttributes(
                             cause=WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND))
    assert history.summary(event) == "UNHANDLED_COMMAND"
