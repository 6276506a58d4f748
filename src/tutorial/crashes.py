"""Notebook 06's experiments: a worker that dies, a worker that stops gracefully, and what the next message
to its cached entity waits for.

An entity is cached on worker B (its own OS process, `tutorial.worker_process`); worker A runs in the
kernel on the same task queue. B is lost, then a deposit signal is sent and timed until its workflow task completed. After a SIGKILL the server still routes the
entity's next workflow task to B's sticky queue; nobody polls it, so the task times out after the sticky
queue's schedule-to-start timeout (`WorkflowTaskTimedOut`, type SCHEDULE_TO_START), moves to the normal
queue, and A replays the history to take it. After a graceful stop the SDK has told the server the worker
is going (ShutdownWorker), so the task goes to the normal queue at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from temporalio.api.enums.v1 import TimeoutType
from temporalio.client import Client, WorkflowHandle

from . import polling
from .entity_updates import deposit_with_start
from .worker import WorkerController
from .worker_process import WorkerProcess
from .workflows import update_account as ua
from .workflows.domain import Transaction
from .workflows.update_account import UpdateAccount
from .workshop import unique

PYTHON_STICKY_TIMEOUT_S = 10.0  # temporalio.worker.Worker's sticky_queue_schedule_to_start_timeout default
WORKFLOWS_SPEC = ["tutorial.workflows.update_account:WORKFLOWS"]
ACTIVITIES_SPEC = ["tutorial.workflows.update_account:ACTIVITIES"]
HOW = ("kill", "stop")


@dataclass(frozen=True)
class WorkerLoss:
    """What the next message met after worker B, which had the entity cached, was lost."""

    how: str  # "kill" (SIGKILL) or "stop" (graceful)
    sticky_timeout_s: float
    stall_s: float  # from the signal after the loss until its workflow task completed
    normal_s: float  # the same update's round trip before it, for comparison
    cached_on_b: bool  # B held the entity in its cache just before
    timed_out_on_sticky: bool  # the history shows the sticky task timing out (SCHEDULE_TO_START)
    picked_up_by: str  # the identity in the WorkflowTaskStarted that ran the update
    survivor: str  # worker A's identity
    survivor_replays: int  # how many times A replayed the entity's history
    survivor_task_ms: float  # the task A ran for the update, replay included (server timestamps)
    balance: int  # the balance the update returned
    expected_balance: int

    @property
    def state_intact(self) -> bool:
        return self.balance == self.expected_balance

    def line(self) -> str:
        what = "SIGKILL" if self.how == "kill" else "graceful stop"
        moved = "timed out on B's sticky queue, then" if self.timed_out_on_sticky else "went straight"
        return (f"{what}: the next deposit was applied after {self.stall_s:.2f} s (before: {self.normal_s * 1000:.0f} ms); its task "
                f"{moved} to the normal queue; worker A replayed {self.survivor_replays}x; balance "
                f"{self.balance} (expected {self.expected_balance})")


async def after_the_update(handle: WorkflowHandle, since_event: int) -> tuple[bool, str, float]:
    """From the history after event `since_event`: did a workflow task time out on schedule-to-start, who
    started the task that ran the update, and how long that task took on its worker (replay included), in ms
    (WorkflowTaskStarted to WorkflowTaskCompleted, the server's clock)?"""
    timed_out, started_by, started_at, task_ms = False, "", None, 0.0
    async for event in handle.fetch_history_events():
        if event.event_id <= since_event:
            continue
        if event.HasField("workflow_task_timed_out_event_attributes"):
            kind = event.workflow_task_timed_out_event_attributes.timeout_type
            timed_out = timed_out or kind == TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_START
        if event.HasField("workflow_task_started_event_attributes") and not started_by:
            started_by = event.workflow_task_started_event_attributes.identity
            started_at = event.event_time.ToDatetime()
        if event.HasField("workflow_task_completed_event_attributes") and started_at is not None and not task_ms:
            task_ms = (event.event_time.ToDatetime() - started_at).total_seconds() * 1000
    return timed_out, started_by, task_ms


async def lose_worker(client: Client, how: str, *, sticky_timeout_s: float = 2.0,
                      survivor: WorkerController | None = None, task_queue: str | None = None) -> WorkerLoss:
    """Cache an entity on worker B, lose B (`how`: kill or stop), send one update, and measure what it met.

    `survivor` is worker A (started here on `task_queue` if not given). The entity is closed at the end.
    """
    if how not in HOW:
        raise ValueError(f"how must be kill or stop, not {how!r}")
    queue = task_queue or (survivor.task_queue if survivor else unique("nb06"))
    b = WorkerProcess(queue, WORKFLOWS_SPEC, ACTIVITIES_SPEC, sticky_timeout_s=sticky_timeout_s)
    own_survivor = survivor is None
    a = survivor or WorkerController(client, task_queue=queue, workflows=ua.WORKFLOWS, activities=ua.ACTIVITIES)
    stopped_a = a.running
    if stopped_a:
        await a.stop()  # only B may take the first task, so B caches the entity
    await b.start()
    try:
        balance, handle = await deposit_with_start(client, unique("nb06-acct"), 100, queue)
        await a.start()
        started = time.perf_counter()
        balance = await handle.execute_update(UpdateAccount.deposit, 1)
        normal_s = time.perf_counter() - started
        cached_on_b = handle.id in (await b.ask())["cached"]
        replays_before = a.replays(handle.id)
        since = (await handle.describe()).history_length
        await (b.kill() if how == "kill" else b.stop())
        # a signal, not an update: its workflow task is always a recorded one (an update after a crash was once
        # tried as a speculative task, unrecorded, that waited 10 s instead of the sticky timeout: measured)
        started = time.perf_counter()
        await handle.signal(UpdateAccount.deposit_signal, Transaction("deposit", 1, unique("after-loss")))
        await polling.until(lambda: task_completed_after(handle, since), timeout=60, interval=0.005,
                            gave_up="the task after the loss never completed")
        stall_s = time.perf_counter() - started
        balance = (await handle.query(UpdateAccount.account_state)).balance
        timed_out, picked_up_by, task_ms = await after_the_update(handle, since)
        result = WorkerLoss(how=how, sticky_timeout_s=sticky_timeout_s, stall_s=stall_s, normal_s=normal_s,
                            cached_on_b=cached_on_b, timed_out_on_sticky=timed_out, picked_up_by=picked_up_by,
                            survivor=a.identity, survivor_replays=a.replays(handle.id) - replays_before,
                            survivor_task_ms=task_ms,
                            balance=balance, expected_balance=102)
        await handle.execute_update(UpdateAccount.close)
        return result
    finally:
        if b.running:
            await b.kill()
        if own_survivor:
            await a.stop()


async def task_completed_after(handle: WorkflowHandle, since_event: int) -> bool:
    """A workflow task completed after event `since_event` (the one that applied the signal)."""
    async for event in handle.fetch_history_events():
        if event.event_id > since_event and event.HasField("workflow_task_completed_event_attributes"):
            return True
    return False


def stall_matches_the_timeout(loss: WorkerLoss, slack_s: float = 1.5) -> bool:
    """After a crash the update waited for the sticky timeout (not less, and not much more)."""
    return loss.timed_out_on_sticky and loss.sticky_timeout_s * 0.9 <= loss.stall_s <= loss.sticky_timeout_s + slack_s


def moved_at_once(loss: WorkerLoss) -> bool:
    """After a graceful stop the task never waited on the sticky queue."""
    return not loss.timed_out_on_sticky and loss.stall_s < loss.sticky_timeout_s * 0.9


async def measure_losses(client: Client, *, runs: int = 3, sticky_timeout_s: float = 2.0,
                         on_run=None) -> list[WorkerLoss]:
    """`runs` crashes and `runs` graceful stops, interleaved (so both meet the same machine load)."""
    losses = []
    for _ in range(runs):
        for how in HOW:
            losses.append(await lose_worker(client, how, sticky_timeout_s=sticky_timeout_s))
            if on_run is not None:
                on_run(losses[-1])
    return losses


def losses_rows(losses: list[WorkerLoss]) -> list[dict]:
    return [{"how": "SIGKILL" if x.how == "kill" else "graceful stop", "stall (s)": round(x.stall_s, 2),
             "update before (ms)": round(x.normal_s * 1000, 1), "sticky task timed out": x.timed_out_on_sticky,
             "taken by": "A" if x.picked_up_by == x.survivor else x.picked_up_by, "A replayed": x.survivor_replays,
             "A's task, replay included (ms)": round(x.survivor_task_ms, 1),
             "balance": x.balance} for x in losses]


def median_stall(losses: list[WorkerLoss], how: str) -> float:
    stalls = sorted(x.stall_s for x in losses if x.how == how)
    return stalls[len(stalls) // 2]
