"""Notebook 06's deploy over open entities: what incompatible code does to executions that are already
running, the three ways out (roll back, patch, reset), and the replay test that catches it before a deploy.

Entities are open for months, so every deploy meets open executions, and the new worker rebuilds each one by
replaying its history with the new code (`tutorial.workflows.audited_account` has the five releases).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Replayer

from . import metrics, polling
from .deploys import NONDETERMINISM  # said once: the SDK's code for a replay that did not match
from .errors import WorkbookError, explain
from .worker import WorkerController
from .workflows import audited_account as aa
from .workshop import unique



async def open_accounts(client: Client, task_queue: str, count: int, *, deposit: int = 10) -> list[WorkflowHandle]:
    """Start `count` accounts (whatever release the worker runs) and make one deposit each."""
    handles = [await client.start_workflow(aa.WORKFLOW_NAME, f"acct-{i}", id=unique(f"nb06-audited-{i}"),
                                           task_queue=task_queue) for i in range(count)]
    for handle in handles:
        await handle.signal("deposit", deposit)
    return handles


async def state(handle: WorkflowHandle) -> dict:
    return await handle.query("state")


async def settled(handle: WorkflowHandle, balance: int, *, timeout: float = 30.0) -> dict:
    """Wait until the account shows `balance` with nothing pending (every deposit audited)."""
    seen = await polling.until(lambda: state(handle), lambda s: s["balance"] == balance and not s["pending"],
                               timeout=timeout, gave_up=f"{handle.id} did not reach balance {balance}",
                               retry_if=task_still_failing)
    return seen.value


def task_still_failing(err: BaseException) -> bool:
    """A query to a workflow whose task failed is refused until a worker completes a task again (after a roll
    back, the server's next retry): "not yet", not an error."""
    return isinstance(err, RPCError) and "failed state" in err.message


async def settled_or_stuck(handle: WorkflowHandle, balance: int, *, timeout: float = 30.0
                           ) -> tuple[str, dict | TaskFailure]:
    """Wait until the account shows `balance` with nothing pending ("settled", its state) or its workflow task
    failed to replay ("stuck", the failure): what a deposit meets right after a deploy."""
    async def look():
        failures = [f for f in await task_failures(handle) if f.nondeterminism]
        if failures:
            return "stuck", failures[-1]
        try:
            now = await asyncio.wait_for(state(handle), 2)
        except (asyncio.TimeoutError, RPCError):
            return None
        return ("settled", now) if now["balance"] == balance and not now["pending"] else None

    seen = await polling.until(look, lambda o: o is not None, timeout=timeout,
                               gave_up=f"{handle.id} neither reached balance {balance} nor failed")
    return seen.value


async def deploy(worker: WorkerController, release: str) -> None:
    """A deploy: the worker restarts with another release of the same workflow type."""
    if release not in aa.RELEASES:
        raise WorkbookError(f"release must be one of {', '.join(aa.RELEASES)}, not {release!r}")
    if not worker.running:
        raise WorkbookError("No worker is running to deploy over: start it first (a deploy replaces a running worker).")
    await worker.restart(workflows=[aa.RELEASES[release]])


@dataclass(frozen=True)
class TaskFailure:
    workflow_id: str
    event_id: int
    message: str

    @property
    def nondeterminism(self) -> bool:
        return NONDETERMINISM in self.message


async def task_failures(handle: WorkflowHandle) -> list[TaskFailure]:
    """Every WorkflowTaskFailed in the current run's history, with its message."""
    found = []
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_task_failed_event_attributes"):
            found.append(TaskFailure(handle.id, event.event_id,
                                     event.workflow_task_failed_event_attributes.failure.message))
    return found


async def stuck(handle: WorkflowHandle, *, timeout: float = 20.0) -> TaskFailure:
    """Wait until the account's workflow task has failed with a nondeterminism error; that failure."""
    seen = await polling.until(lambda: task_failures(handle), lambda f: any(x.nondeterminism for x in f),
                               timeout=timeout, gave_up=f"{handle.id}'s workflow task did not fail")
    return next(f for f in seen.value if f.nondeterminism)


async def replay_test(client: Client, query: str, release: str) -> dict[str, str]:
    """Replay the histories of every workflow `query` lists against `release`: {workflow id: "ok" or the error}.

    The habit that catches an incompatible change before it is deployed: `list_workflows(...).map_histories()`
    fetches the histories, `Replayer.replay_workflows` feeds each to the new code, no worker involved.
    """
    if release not in aa.RELEASES:
        raise WorkbookError(f"release must be one of {', '.join(aa.RELEASES)}, not {release!r}")
    replayer = Replayer(workflows=[aa.RELEASES[release]], runtime=metrics.runtime())
    results = await replayer.replay_workflows(client.list_workflows(query).map_histories(),
                                              raise_on_replay_failure=False)
    failures = results.replay_failures  # only the runs that failed are in it
    return {w.id: _first_line(failures[w.run_id]) if failures.get(w.run_id) else "ok"
            async for w in client.list_workflows(query)}


def _first_line(failure: BaseException) -> str:
    text = str(failure)
    at = text.find(NONDETERMINISM)
    return (text[at:] if at >= 0 else text).splitlines()[0][:160]


async def reset_to_first_task(client: Client, handle: WorkflowHandle, reason: str) -> WorkflowHandle:
    """Reset the workflow to the end of its first workflow task: a new run keeps the history up to there,
    the signals received after it are applied again, and everything else after it is done again by the code
    deployed now (the new run's history shows the reset as a WorkflowTaskFailed with the reason). Returns the
    handle of the new run."""
    first_completed = None
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_task_completed_event_attributes"):
            first_completed = event.event_id
            break
    if first_completed is None:
        raise WorkbookError(f"{handle.id} has no completed workflow task to reset to.")
    return await reset(client, handle, first_completed, reason)


async def reset(client: Client, handle: WorkflowHandle, event_id: int, reason: str) -> WorkflowHandle:
    """The client's reset (what `temporal workflow reset --event-id` does), with a short message on refusal.

    The event must end a workflow task (completed, failed or timed out): the server refuses any other with a
    message about rebuilding mutable state, so that case is said in plain words before anything is sent. A
    closed workflow is no refusal: Temporal resets it too, into a new open run (measured)."""
    run_id = handle.result_run_id or handle.run_id or (await handle.describe()).run_id
    ends = {"workflow_task_completed_event_attributes", "workflow_task_failed_event_attributes",
            "workflow_task_timed_out_event_attributes"}
    kinds = {event.event_id: event.WhichOneof("attributes")
             async for event in client.get_workflow_handle(handle.id, run_id=run_id).fetch_history_events()}
    if kinds.get(event_id) not in ends:
        points = [i for i, kind in kinds.items() if kind == "workflow_task_completed_event_attributes"]
        what = "does not exist" if event_id not in kinds else "does not end a workflow task"
        raise WorkbookError(f"Reset refused: event {event_id} {what} in {handle.id}'s history "
                            f"({len(kinds)} events); reset to the end of a workflow task, e.g. event {points[:3]}")
    try:
        response = await client.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=handle.id, run_id=run_id),
            reason=reason, workflow_task_finish_event_id=event_id, request_id=str(uuid.uuid4())))
    except RPCError as err:
        raise WorkbookError(f"Reset refused: {explain(err)}") from None
    return client.get_workflow_handle(handle.id, run_id=response.run_id)


async def close_all(handles: list[WorkflowHandle], *, timeout: float = 30.0) -> None:
    """Close every account and wait until each has finished; one line naming those that did not (an account
    whose history the deployed release cannot replay never finishes)."""
    for handle in handles:
        try:
            await handle.signal("close")
        except RPCError:
            pass  # already closed
    done, pending = await asyncio.wait([asyncio.ensure_future(h.result()) for h in handles], timeout=timeout)
    for task in pending:
        task.cancel()
    if pending:
        left = [h.id for h in handles if (await h.describe()).status.name == "RUNNING"]
        raise WorkbookError(f"Still open after {timeout:g} s: {left} (stuck on a release that cannot replay them?)")
