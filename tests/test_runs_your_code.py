"""Notebook 00's checks against the real dev server: each holds on the notebook's experiment and says False on a
variant where its claim is false (counterfactual tests, one or more per claim C1, C2, C3)."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.worker import Worker

from tutorial import runs_your_code as runs
from tutorial.worker import WorkerController
from tutorial.workflows.greeting import Counter, Greet, compose_greeting
from tutorial.workshop import unique


def make(client, **kw):
    return WorkerController(client, task_queue=unique("test-nb00"), workflows=[Greet, Counter],
                            activities=[compose_greeting], **kw)


def start_greet(run, client, worker, name="learner"):
    return run(client.start_workflow(Greet.run, name, id=unique("test-nb00-greet"), task_queue=worker.task_queue))


def watch(run, client, handle, seconds=2.0):
    return run(runs.watch_waiting_task(client, handle, seconds=seconds, tick=0.5))


# ------------------------------------------------------------------ pollers
def test_the_server_lists_a_worker_after_it_stopped_and_never_one_that_did_not_poll(run, client):
    w = make(client)
    r = run(runs.poll_and_leave(w))
    assert r.fresh == [] and not w.running
    assert runs.listed_after_leaving(r), r
    assert [p.last_access for p in r.after_stop if p.identity == r.identity], "listed with its last access time"
    other = make(client)  # a worker that never polled: not listed, so the check says False
    assert not runs.listed_after_leaving(runs.PollerRecord(other.identity, [], r.while_running, r.after_stop, 0.0))


# ------------------------------------------------------------------ C1: the request is persisted, then delivered
def test_counterfactual_c1_a_start_the_server_refused_is_not_persisted(run, client):
    w = make(client)  # never started: no worker on this queue
    first = start_greet(run, client, w, "learner")
    with pytest.raises(WorkflowAlreadyStartedError):
        run(client.start_workflow(Greet.run, "intruder", id=first.id, task_queue=w.task_queue))
    r = watch(run, client, client.get_workflow_handle(first.id), seconds=0.5)
    assert runs.request_persisted(r, ["learner"], w.task_queue), r
    assert not runs.request_persisted(r, ["intruder"], w.task_queue), "the refused request is not in the history"
    run(first.terminate("test over"))


def test_counterfactual_c1_with_a_worker_running_the_request_is_not_seen_before_any_worker(run, client):
    w = make(client)
    run(w.start())
    handle = start_greet(run, client, w)
    run(asyncio.wait_for(handle.result(), 30))
    r = watch(run, client, handle, seconds=0.5)
    assert not runs.request_persisted(r, ["learner"], w.task_queue), r.event_types
    run(w.stop())


def test_c1_the_waiting_task_is_delivered_to_the_worker_that_starts(run, client):
    w = make(client)
    handle = start_greet(run, client, w)
    run(w.start())
    assert run(asyncio.wait_for(handle.result(), 30)) == "Hello, learner!"
    tasks = run(runs.tasks_of(handle))
    assert runs.delivered_to(tasks, w.identity), tasks
    assert tasks[0].queue_kind == "NORMAL", "a first task always goes to the queue the client named"
    run(w.stop())


def test_counterfactual_c1_a_task_another_worker_took_was_not_delivered_to_ours(run, client):
    ours = make(client)  # never started
    handle = start_greet(run, client, ours)

    async def other_worker_runs_it():
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            async with Worker(client, task_queue=ours.task_queue, identity="someone-else", workflows=[Greet],
                              activities=[compose_greeting], activity_executor=pool):
                return await asyncio.wait_for(handle.result(), 30)

    assert run(other_worker_runs_it()) == "Hello, learner!"
    tasks = run(runs.tasks_of(handle))
    assert runs.delivered_to(tasks, "someone-else")
    assert not runs.delivered_to(tasks, ours.identity), tasks


# ------------------------------------------------------------------ C2: with no worker the task waits in the server
def test_c2_with_no_worker_the_task_waits(run, client):
    w = make(client)
    handle = start_greet(run, client, w)
    r = watch(run, client, handle, seconds=2.0)
    assert runs.request_persisted(r, ["learner"], w.task_queue) and runs.task_waited(r, seconds=2.0), r
    run(w.start())
    assert run(asyncio.wait_for(handle.result(), 30)) == "Hello, learner!", "nothing was lost while it waited"
    run(w.stop())


def test_counterfactual_c2_with_a_worker_already_running_the_task_does_not_wait(run, client):
    w = make(client)
    run(w.start())
    handle = start_greet(run, client, w)
    r = watch(run, client, handle, seconds=2.0)
    assert not runs.task_waited(r, seconds=2.0), r.observations
    assert r.observations[-1]["status"] == "COMPLETED"
    run(w.stop())


# ------------------------------------------------------------------ C3: the worker keeps the state in its cache
def counter_on(run, client, w):
    return run(client.start_workflow(Counter.run, id=unique("test-nb00-counter"), task_queue=w.task_queue))


def test_c3_signals_to_a_cached_workflow_need_no_replay(run, client):
    w = make(client)
    run(w.start())
    counter = counter_on(run, client, w)
    r = run(runs.signal_and_watch(client, w, counter, signals=3))
    assert runs.state_stayed_in_cache(r), r
    assert r.value_after == 3 and r.loads_after == 1 and r.replays_after == 0
    assert not runs.rebuilt_by_replay(r)
    run(counter.signal(Counter.finish))
    assert run(counter.result()) == 3
    run(w.stop())


def test_counterfactual_c3_after_a_worker_restart_the_state_is_rebuilt_by_replay(run, client):
    w = make(client)
    run(w.start())
    counter = counter_on(run, client, w)
    r = run(runs.signal_and_watch(client, w, counter, signals=1, between=w.restart))
    assert not runs.state_stayed_in_cache(r), r
    assert runs.rebuilt_by_replay(r) and r.worker_after != r.identity
    assert {t.started_by for t in r.tasks} == {r.worker_after}, "the new worker ran the task"
    run(counter.signal(Counter.finish))
    run(w.stop())


def test_counterfactual_c3_a_worker_without_a_cache_replays_every_task(run, client):
    w = make(client, max_cached_workflows=0)
    run(w.start())
    counter = counter_on(run, client, w)
    r = run(runs.signal_and_watch(client, w, counter, signals=3))
    assert not runs.state_stayed_in_cache(r), r
    assert r.replays_after > r.replays_before and r.loads_after > r.loads_before  # rebuilt for each task
    assert r.value_after == r.value_before + 3, "the state is right all the same: the history has it"
    run(counter.signal(Counter.finish))
    run(w.stop())


def test_signals_that_arrive_while_the_first_task_waits_join_it(run, client):
    """What broke notebook 00 step 5 on a busy shared server: signals sent before the first task started make
    no task of their own. Shown here by holding the first task back (no worker yet)."""
    w = make(client)
    counter = counter_on(run, client, w)
    for _ in range(3):
        run(counter.signal(Counter.add, 1))
    run(w.start())
    run(runs.no_task_pending(client, counter))
    assert run(counter.query(Counter.current)) == 3
    tasks = run(runs.tasks_of(counter))
    assert len(tasks) == 1 and tasks[0].queue_kind == "NORMAL", tasks
    assert run(runs.tasks_of(counter, after=2)) == [], "the old check 'at least one new task' would have failed"
    run(counter.signal(Counter.finish))
    run(w.stop())
