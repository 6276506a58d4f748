"""The in-kernel worker: start, stop, restart; the cache counters and the replay log tell the truth."""

from __future__ import annotations

import asyncio

from tutorial.workflows.greeting import Counter, Greet, compose_greeting
from tutorial.workshop import unique
from tutorial.worker import WorkerController


def make(client, **kw):
    return WorkerController(client, task_queue=unique("test-worker"), workflows=[Greet, Counter],
                            activities=[compose_greeting], **kw)


def test_start_runs_workflows_and_stop_stops(run, client):
    w = make(client)
    assert not w.running and "STOPPED" in w.status()
    run(w.start())
    assert w.running and "RUNNING" in w.status()
    greets_then_stops(run, client, w, "Ada")


def greets_then_stops(run, client, w, name: str) -> None:
    """The worker runs a workflow to its result, then stops."""
    result = run(client.execute_workflow(Greet.run, name, id=unique("greet"), task_queue=w.task_queue))
    assert result == f"Hello, {name}!"
    run(w.stop())
    assert not w.running


def test_a_workflow_waits_while_the_worker_is_stopped(run, client):
    w = make(client)
    handle = run(client.start_workflow(Greet.run, "Bo", id=unique("greet"), task_queue=w.task_queue))
    run(asyncio.sleep(1.0))
    assert run(handle.describe()).status.name == "RUNNING"
    run(w.start())
    assert run(asyncio.wait_for(handle.result(), 20)) == "Hello, Bo!"
    run(w.stop())


def test_the_cache_keeps_state_and_a_restart_forces_a_replay(run, client):
    w = make(client)
    run(w.start())
    handle = run(client.start_workflow(Counter.run, id=unique("counter"), task_queue=w.task_queue))
    for _ in range(3):
        run(handle.signal(Counter.add, 2))
    assert run(handle.query(Counter.current)) == 6
    assert w.replays(handle.id) == 0, "while cached, the worker never replays"
    assert w.cached_ids() == [handle.id] and w.cache().cache_size == 1
    run(w.restart())
    assert w.cached_ids() == [], "a restarted worker starts with an empty cache"
    run(handle.signal(Counter.add, 1))
    assert run(handle.query(Counter.current)) == 7
    assert w.replays(handle.id) == 1, "after a restart the next task replays the history once"
    run(handle.signal(Counter.finish))
    assert run(handle.result()) == 7
    run(w.stop())


def test_a_cache_of_one_evicts_on_every_switch(run, client):
    w = make(client, max_cached_workflows=1)
    run(w.start())
    before = w.cache()
    a = run(client.start_workflow(Counter.run, id=unique("a"), task_queue=w.task_queue))
    b = run(client.start_workflow(Counter.run, id=unique("b"), task_queue=w.task_queue))
    for _ in range(3):
        for h in (a, b):
            run(h.signal(Counter.add, 1))
            run(h.query(Counter.current))
    delta = w.cache().minus(before)
    assert delta.forced_evictions >= 5
    # every eviction but the one caused by b's very first task is followed by a replay
    assert w.replays() >= delta.forced_evictions - 1
    assert run(a.query(Counter.current)) == 3 and run(b.query(Counter.current)) == 3
    for h in (a, b):
        run(h.signal(Counter.finish))
    run(w.stop())


def test_restart_applies_changed_settings(run, client):
    w = make(client)
    run(w.start())
    run(w.restart(max_cached_workflows=1))
    assert w.settings.max_cached_workflows == 1 and w.starts == 2 and w.running
    run(w.stop())


def test_stop_gives_up_on_an_activity_that_never_finishes_instead_of_hanging(run, client):
    """A graceful shutdown waits for running activities; one blocked in its thread must not hang the cell."""
    import threading
    import time

    from temporalio import activity

    release = threading.Event()

    @activity.defn(name="compose_greeting")
    def stuck(name: str) -> str:  # a sync activity blocked on something that never comes
        release.wait(60)
        return name

    controller = WorkerController(client, task_queue=unique("stuck"), workflows=[Greet], activities=[stuck],
                                  graceful_shutdown_timeout=__import__("datetime").timedelta(seconds=0))
    run(controller.start())
    handle = run(client.start_workflow(Greet.run, "x", id=unique("stuck"), task_queue=controller.task_queue))
    run(asyncio.sleep(1.5))  # the activity is running now
    started = time.monotonic()
    try:
        run(controller.stop(timeout=2))
        took = time.monotonic() - started
        assert not controller.running and took < 10, f"stop took {took:.1f} s"
        assert "did not shut down within 2 s" in (controller.last_error or ""), controller.last_error
    finally:
        release.set()
        run(handle.terminate())



def polling_tasks(w, run) -> int:
    """How many SDK workers of this controller are running now (each is an asyncio task named after it)."""
    return sum(1 for t in asyncio.all_tasks(run.__self__) if t.get_name() == f"worker {w.task_queue}" and not t.done())


async def stop_then_start_at_once(stop, start):
    """The panel's Stop, and a click whose need starts the worker while that stop is still under way."""
    async def click_soon():
        await asyncio.sleep(0)  # the stop has begun (its shutdown is under way), and has not finished
        await start()
    await asyncio.gather(stop(), click_soon())


def test_a_start_during_a_stop_waits_for_it_and_the_worker_runs(run, client):
    w = make(client)
    run(w.start())
    run(stop_then_start_at_once(w.stop, w.start))
    assert w.running and polling_tasks(w, run) == 1

    async def three_at_once():  # two Restarts and a need at the same moment
        await asyncio.gather(w.restart(), w.start(), w.restart())

    run(three_at_once())
    assert w.running and polling_tasks(w, run) == 1
    greets_then_stops(run, client, w, "Cy")


def test_counterfactual_without_taking_turns_the_start_is_lost_in_the_stop(run, client):
    w = make(client)
    run(w._start())
    run(stop_then_start_at_once(w._stop, w._start))  # the start saw a worker still running, and did nothing
    assert not w.running  # so the click would wait for a worker that is gone
