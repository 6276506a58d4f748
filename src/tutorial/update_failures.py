"""Notebook 03's experiments on what can go wrong *after* an update is sent: an exception in its handler
(issue item 4) and a server restart before any worker accepted it (issue item 6).

- `charge_fee_and_look`: a `FeeAccount` update raises after acceptance. An `ApplicationError` fails that update
  only (`failed_only_the_update`); a bug (a `KeyError`) fails the workflow task, which the worker retries, and
  the caller waits (`failed_the_workflow_task`). `deploy_fix` ends the stuck one the way you would in
  production: a worker with the fixed code (`FixedFeeAccount`), whose retry of the task fails the update cleanly.
- `update_across_restart`: a persistent dev server of its own; an update sent while no worker runs is
  admitted, not accepted; the server restarts; `admitted_update_was_dropped` says whether it was lost, and
  `retry_applied_once` whether the caller's retry with the same update id made it safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.service import RPCError, RPCStatusCode

from . import server
from .entity_updates import deposit_with_start, update_failure
from .history import event_types, pending_task
from .polling import until
from .worker import WorkerController
from .workflows.update_account import ACTIVITIES, WORKFLOWS, FeeAccount, UpdateAccount
from .workshop import state_dir, unique

WORKER_LOGGER = "temporalio.worker._workflow_instance"  # where the SDK logs "Failed activation on workflow ..."


@contextlib.contextmanager
def counting_worker_warnings() -> Iterator[list[logging.LogRecord]]:
    """Collect the worker's "Failed activation" warnings (each with a traceback) instead of printing them."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger, keep = logging.getLogger(WORKER_LOGGER), Keep(logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(keep)
    logger.propagate = False
    try:
        yield records
    finally:
        logger.removeHandler(keep)
        logger.propagate = propagate


# ---------------------------------------------------------------- exceptions in an update handler (item 4)


@dataclass
class HandlerFailure:
    """One `charge_fee` update whose handler raised after acceptance, and what followed."""

    kind: str  # the fee kind sent
    error: str  # the exception the caller got
    caller_saw: str
    waited_s: float
    status: str  # the workflow's status afterwards
    new_events: list[str]  # what the history gained
    pending_attempt: int | None  # the attempt number of the workflow task the server holds, if any
    worker_warnings: int = 0

    @property
    def failed_tasks(self) -> int:
        return self.new_events.count("WorkflowTaskFailed")

    def row(self) -> dict:
        return {"fee": repr(self.kind), "caller got": self.error, "after (s)": f"{self.waited_s:.1f}",
                "workflow": self.status, "WorkflowTaskFailed events": self.failed_tasks,
                "task attempt now": self.pending_attempt or "-",
                "new events": ", ".join(t.removeprefix("WorkflowExecution") for t in self.new_events)}


def failed_only_the_update(r: HandlerFailure) -> bool:
    """Item 4: an ApplicationError raised after acceptance fails that update only. The caller got
    WorkflowUpdateFailedError, the history records the update accepted then completed (with the failure), no
    workflow task failed, and the workflow is still RUNNING."""
    return (r.error == "WorkflowUpdateFailedError" and r.status == "RUNNING" and r.failed_tasks == 0
            and "WorkflowExecutionUpdateAccepted" in r.new_events
            and "WorkflowExecutionUpdateCompleted" in r.new_events)


def failed_the_workflow_task(r: HandlerFailure) -> bool:
    """Item 4: any other exception (a bug) fails the workflow task. The caller got no answer (its wait timed
    out), the history shows WorkflowTaskFailed and no accepted update, and the workflow is RUNNING, stuck on a
    task the worker retries."""
    return (r.error == "WorkflowUpdateRPCTimeoutOrCancelledError" and r.status == "RUNNING" and r.failed_tasks >= 1
            and "WorkflowExecutionUpdateAccepted" not in r.new_events)


async def open_fee_account(client: Client, task_queue: str, opening: int = 20) -> WorkflowHandle:
    """A fresh `FeeAccount` with `opening` deposited."""
    handle = await client.start_workflow(FeeAccount.run, "fees", id=unique("nb03-fees"), task_queue=task_queue)
    await handle.execute_update(FeeAccount.deposit, opening)
    return handle


async def charge_fee_and_look(client: Client, handle: WorkflowHandle, kind: str, *, update_id: str,
                              wait_s: float = 3.0) -> HandlerFailure:
    """Send `charge_fee(kind)` (the caller waits at most `wait_s`), then report what the caller and the history
    saw. For a workflow task failure, waits until the server has recorded one (the first retry is at once)."""
    before = len(await event_types(handle))
    started = time.perf_counter()
    with counting_worker_warnings() as warnings:
        try:
            result = await handle.execute_update(FeeAccount.charge_fee, kind, id=update_id,
                                                 rpc_timeout=timedelta(seconds=wait_s))
            error, saw = "none", f"returned {result}"
        except WorkflowUpdateFailedError as err:
            error, saw = type(err).__name__, await update_failure(handle, update_id, err)
        except WorkflowUpdateRPCTimeoutOrCancelledError as err:
            error, saw = type(err).__name__, f"no answer within {wait_s:g} s: the update was never accepted"
        waited = time.perf_counter() - started
        if error != "WorkflowUpdateFailedError":
            await until(lambda: event_types(handle), lambda types: "WorkflowTaskFailed" in types[before:],
                        timeout=10, gave_up="no workflow task failed")
    task = await pending_task(client, handle)
    return HandlerFailure(kind, error, saw, waited, task["status"], (await event_types(handle))[before:],
                          task["attempt"], len(warnings))


@dataclass
class FixOutcome:
    """The stuck update's end, once a worker with the fixed code took the retried task."""

    caller_saw: str
    waited_s: float
    status: str
    task_waiting: bool
    new_events: list[str]


def fix_ended_the_stuck_update(r: FixOutcome) -> bool:
    """The deploy unstuck the workflow: the update ended (here: failed with the fixed code's UnknownFee), the
    workflow is still RUNNING, and no workflow task is waiting any more."""
    return "UnknownFee" in r.caller_saw and r.status == "RUNNING" and not r.task_waiting \
        and r.new_events[-2:] == ["WorkflowExecutionUpdateAccepted", "WorkflowExecutionUpdateCompleted"]


async def deploy_fix(client: Client, handle: WorkflowHandle, update_id: str, old: WorkerController,
                     fixed: WorkerController, *, timeout: float = 60.0) -> FixOutcome:
    """Replace worker `old` by `fixed` (same task queue, fixed code), then wait up to `timeout` s for the stuck
    update's outcome (the server retries a failing workflow task with a growing pause: seconds here)."""
    before = len(await event_types(handle))
    await old.stop()
    await fixed.start()
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(handle.get_update_handle_for(FeeAccount.charge_fee, update_id).result(),
                                        timeout)
        saw = f"returned {result}"
    except WorkflowUpdateFailedError as err:
        saw = await update_failure(handle, update_id, err)
    except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        saw = f"no answer within {timeout:g} s: the update is still stuck"
    waited = time.perf_counter() - started
    task = await pending_task(client, handle)
    return FixOutcome(saw, waited, task["status"], task["task waiting"], (await event_types(handle))[before:])


# ---------------------------------------------------------------- a restart before acceptance (item 6)


@dataclass
class RestartRun:
    """An update admitted while no worker ran; then (or not) a server restart; then the caller's retries."""

    restarted: bool
    opening: int
    amount: int
    task_before: dict  # the server's pending workflow task while the update waited
    task_after: dict  # the same after the restart (or after nothing)
    lookup: str  # what asking for the update's result said once a worker ran again
    balance_after: int  # before the caller retried
    retries: list[int]  # what each retry with the same update id returned
    final_balance: int
    seconds: dict[str, float] = field(default_factory=dict)

    def rows(self) -> list[dict]:
        return [{"moment": "update sent, no worker", "pending workflow task": self.task_before["task state"] or "none",
                 "balance": self.opening, "what the caller learns": "timed out: admitted, not accepted"},
                {"moment": "after a server restart" if self.restarted else "no restart",
                 "pending workflow task": self.task_after["task state"] or "none", "balance": self.balance_after,
                 "what the caller learns": self.lookup},
                {"moment": f"caller retries with the same update id ×{len(self.retries)}",
                 "pending workflow task": "none", "balance": self.final_balance,
                 "what the caller learns": f"returned {self.retries}"}]


def admitted_update_was_dropped(r: RestartRun) -> bool:
    """Item 6: an update the server admitted but no worker accepted is not durable: after the restart the
    server no longer knows it (asking for its result says NOT_FOUND) and, with a worker running again, nothing
    was applied."""
    return r.restarted and r.lookup.startswith("NOT_FOUND") and r.balance_after == r.opening


def retry_applied_once(r: RestartRun) -> bool:
    """Item 6: retrying with the same update id is safe: every retry returned the same balance, and the
    deposit was applied exactly once."""
    return bool(r.retries) and set(r.retries) == {r.opening + r.amount} and r.final_balance == r.opening + r.amount


async def _own_server(db_file, port: int | None = None, ui_port: int | None = None
                      ) -> tuple[server.EmbeddedServer, Client]:
    own = server.EmbeddedServer(db_file=db_file, port=port, ui_port=ui_port)
    return own, await server.connect_to(await own.start())


async def update_across_restart(*, restart: bool = True, opening: int = 100, amount: int = 7, retries: int = 2,
                                step: Callable[[str], None] | None = None) -> RestartRun:
    """On a persistent dev server of its own (a db file, so workflows survive a restart): open an account,
    stop the worker, send a deposit (the caller gives up after 1 s), restart the server (or not), start a
    worker again, ask for the update's result, then retry it `retries` times with the same update id.
    `step(what)` after each stage. The server and its db file are gone afterwards."""
    db_file = state_dir() / f"nb03-restart-{uuid.uuid4().hex[:8]}.db"
    say = step or (lambda what: None)
    seconds: dict[str, float] = {}
    own, client = await _own_server(db_file)
    worker: WorkerController | None = None
    try:
        queue = unique("nb03-restart")
        worker = WorkerController(client, task_queue=queue, workflows=WORKFLOWS, activities=ACTIVITIES)
        await worker.start()
        _, handle = await deposit_with_start(client, f"restart-{uuid.uuid4().hex[:5]}", opening, worker.task_queue)
        await worker.stop()
        say("account opened, worker stopped")
        update_id = unique("nb03-deposit")
        try:
            await handle.start_update(UpdateAccount.deposit, amount, id=update_id,
                                      wait_for_stage=WorkflowUpdateStage.ACCEPTED, rpc_timeout=timedelta(seconds=1))
            raise AssertionError("with no worker the update cannot be accepted")
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            pass
        task_before = await pending_task(client, handle)
        say("update sent: admitted, not accepted")
        if restart:
            started = time.perf_counter()
            port, ui_port = own.port, own.ui_port
            own.stop()
            own, client = await _own_server(db_file, port, ui_port)
            seconds["restart"] = time.perf_counter() - started
            handle = client.get_workflow_handle(handle.id)
            say(f"server restarted in {seconds['restart']:.1f} s")
        task_after = await pending_task(client, handle)
        worker = WorkerController(client, task_queue=queue, workflows=WORKFLOWS, activities=ACTIVITIES)
        await worker.start()
        try:
            result = await asyncio.wait_for(handle.get_update_handle(update_id).result(), 20)
            lookup = f"the update completed: returned {result}"
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            lookup = f"NOT_FOUND: {err.message}"
        balance_after = (await handle.query(UpdateAccount.account_state)).balance
        say("worker started again, update looked up")
        returned = [await handle.execute_update(UpdateAccount.deposit, amount, id=update_id) for _ in range(retries)]
        final = (await handle.query(UpdateAccount.account_state)).balance
        await handle.execute_update(UpdateAccount.close)
        say("retried with the same id, account closed")
        return RestartRun(restart, opening, amount, task_before, task_after, lookup, balance_after, returned, final,
                          seconds)
    finally:
        if worker is not None:
            await worker.stop()
        own.stop()
        for path in (db_file, *db_file.parent.glob(db_file.name + "-*")):
            path.unlink(missing_ok=True)

