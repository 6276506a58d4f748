"""Notebook 01's deploy experiment (C6): a request in flight while the worker is replaced by a new release.

With one short workflow per request no execution lives for months, but under steady traffic some requests
are always in flight: a deploy meets every request started in the last few seconds, and the new worker
finishes them by replaying their history with the *new* code. `across_deploy` makes that happen on purpose:

1. the old release is deployed (the worker restarted with it) and a request is sent that waits
   `review_seconds` in its workflow (a durable timer, as a fraud check might);
2. as soon as the server has recorded the timer (the old code's first decision), the worker is restarted with
   the new release: the request's next task can only go to the new code, which replays the history first;
3. a fresh request is sent to the new release (new requests are never the problem);
4. we wait until the in-flight request has either completed or had a workflow task fail (the server writes
   `WorkflowTaskFailed` into the history; the replay error `TMPRL1100` is in its message).

`finished_without_a_failed_task` is the notebook's check; `roll_back` deploys a release again and waits for the
stuck request to finish, so nothing stays open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from temporalio.client import WorkflowHandle

from . import polling
from .errors import WorkbookError
from .history import pending_task, short_type
from .per_request import Bank
from .worker import WorkerController
from .workflows.account_requests import Reply

NONDETERMINISM = "TMPRL1100"  # the SDK's error code for "the code did not replay its own history"


@dataclass
class DeployRun:
    """What one deploy with a request in flight gave (everything read from the server's history)."""

    old: str  # class names of the two releases
    new: str
    workflow_id: str
    review_seconds: float
    workers: list[str]  # identity of the worker that started each workflow task, in order
    old_identity: str
    new_identity: str
    status: str  # of the in-flight request when we looked: COMPLETED, or RUNNING (stuck)
    reply: Reply | None  # its reply, if it completed
    failed_tasks: list[str] = field(default_factory=list)  # message of every WorkflowTaskFailed event
    task_attempt: int | None = None  # attempt number of the task the server holds for it (when stuck)
    fresh: Reply | None = None  # a request sent after the deploy, answered by the new release
    open_seconds: float = 0.0  # how long the in-flight request had been open when we looked
    handle: WorkflowHandle | None = None

    @property
    def crossed(self) -> bool:
        """True if the request really was in flight across the deploy: its first task ran on the old
        release's worker and a later one on the new release's."""
        return (len(self.workers) >= 2 and self.workers[0] == self.old_identity
                and self.new_identity in self.workers[1:])

    @property
    def nondeterminism(self) -> bool:
        return any(NONDETERMINISM in m for m in self.failed_tasks)

    def line(self) -> str:
        if self.reply is not None:
            outcome = f"completed: {self.reply.line()}"
        else:
            outcome = f"{self.status}, workflow task attempt {self.task_attempt}"
        failed = f"; failed task: {self.failed_tasks[0][:110]}" if self.failed_tasks else "; no failed task"
        return f"{self.old} -> {self.new}: request in flight {outcome}{failed}"


def finished_without_a_failed_task(r: DeployRun) -> bool:
    """C6: a request in flight across the deploy (started on the old release, continued by the new one)
    completed without a failed workflow task. True for a release that replays the old history; False for one
    whose commands differ (the new worker's replay fails, the task is retried, the request stays open)."""
    return r.crossed and r.status == "COMPLETED" and r.reply is not None and not r.failed_tasks


async def _tasks_and_failures(handle: WorkflowHandle) -> tuple[list[str], list[str], list[str]]:
    events = list((await handle.fetch_history()).events)
    workers = [e.workflow_task_started_event_attributes.identity for e in events
               if e.HasField("workflow_task_started_event_attributes")]
    failed = [e.workflow_task_failed_event_attributes.failure.message for e in events
              if e.HasField("workflow_task_failed_event_attributes")]
    return [short_type(e) for e in events], workers, failed


async def across_deploy(bank: Bank, worker: WorkerController, old: type, new: type, *, account_id: str,
                        amount: int = 10, review_seconds: float = 3.0, beside: Sequence[type] = (),
                        on_step: Callable[[str], None] | None = None, timeout: float = 60.0,
                        tries: int = 3) -> DeployRun:
    """Deploy `new` while a withdrawal started on `old` waits in its review; see the module docstring.

    `beside`: other workflow classes the worker keeps registered. `on_step(text)` is called after each of the
    four steps (for a progress bar). On a machine so slow that the old worker finished the request before the
    deploy, the experiment is repeated with a review twice as long (`tries` times at most).
    """
    step = on_step or (lambda text: None)
    for _ in range(tries):
        await worker.restart(workflows=[old, *beside])
        old_identity = worker.identity
        started = time.perf_counter()
        handle = await bank.start(account_id, "withdraw", amount, review_seconds=review_seconds)
        await polling.until(lambda: _tasks_and_failures(handle), lambda t: "TimerStarted" in t[0], timeout=timeout,
                            gave_up="the old release never started the review timer: is the worker running?")
        step(f"request in its {review_seconds:g} s review on {old.__name__}")
        await worker.restart(workflows=[new, *beside])  # the deploy
        step(f"deployed {new.__name__}")
        if old_identity in (await _tasks_and_failures(handle))[1][1:]:  # the old worker went on before the deploy
            review_seconds *= 2  # (a machine too busy for a review this short): finish it on the old code, again
            await worker.restart(workflows=[old, *beside])
            await asyncio.wait_for(handle.result(), timeout)
            continue
        fresh = await asyncio.wait_for(bank.send(account_id, "withdraw", 1), timeout)
        step("a fresh request answered by the new release")
        seen = await polling.until(
            lambda: _tasks_and_failures(handle),
            lambda t: t[0][-1] == "WorkflowExecutionCompleted" or bool(t[2]), timeout=timeout,
            gave_up=lambda t: f"the request in flight neither completed nor failed a task: {t and t[0][-4:]}")
        types, workers, failed = seen.value
        done = types[-1] == "WorkflowExecutionCompleted"
        task = None if done else (await pending_task(bank.client, handle))["attempt"]
        step("request completed" if done else "the request's workflow task failed")
        return DeployRun(old=old.__name__, new=new.__name__, workflow_id=handle.id, review_seconds=review_seconds,
                         workers=workers, old_identity=old_identity, new_identity=worker.identity,
                         status="COMPLETED" if done else "RUNNING", reply=await handle.result() if done else None,
                         failed_tasks=failed, task_attempt=task, fresh=fresh,
                         open_seconds=time.perf_counter() - started, handle=handle)
    raise WorkbookError(f"the old worker kept finishing the request before the deploy, even with a "
                        f"{review_seconds:g} s review: this machine is too busy for the experiment; run it again")


async def roll_back(worker: WorkerController, release: type, r: DeployRun, *, beside: Sequence[type] = (),
                    timeout: float = 90.0) -> tuple[Reply, float]:
    """Deploy `release` again (the code that wrote the stuck request's history) and wait for that request to
    finish: the server retries its workflow task, the replay now matches. Returns its reply and the seconds
    it took (the server's retry backoff, usually about 10 s)."""
    if r.handle is None:
        raise WorkbookError("this deploy run has no request to finish")
    started = time.perf_counter()
    await worker.restart(workflows=[release, *beside])
    reply = await asyncio.wait_for(r.handle.result(), timeout)
    return reply, time.perf_counter() - started
