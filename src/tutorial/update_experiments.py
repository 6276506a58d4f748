"""Notebook 03's experiments on what an update guarantees: C14 (synchronous), update-with-start (not atomic),
C13 (a busy worker delays updates).

Each experiment returns what it measured as a small dataclass; each claim has a check function of that result
(`update_is_synchronous`, `left_an_empty_account_running`, `worker_load_delayed_updates`) that the notebook
asserts and that the counterfactual tests run against a variant where the claim is false (a signal, a checked
start, an idle worker) to show it then returns False.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateStage

from .entity_updates import open_account_operation, update_failure, workflow_id
from .errors import WorkbookError
from .history import pending_task, short_type, summary
from .polling import until
from .workflows import domain
from .workflows.domain import Account, Transaction
from .workflows.update_account import BusyEntity, Transfer, UpdateAccount
from .workshop import unique


async def events(handle: WorkflowHandle) -> list[HistoryEvent]:
    """The run's raw history events (the notebook's tables use `history.history_frame`)."""
    return [event async for event in handle.fetch_history_events()]


def update_completed(history: list[HistoryEvent], update_id: str) -> bool:
    """True if the history holds the completion (a result or a failure) of update `update_id`."""
    return any(short_type(e) == "WorkflowExecutionUpdateCompleted"
               and e.workflow_execution_update_completed_event_attributes.meta.update_id == update_id
               for e in history)


def signal_processed(history: list[HistoryEvent], request_id: str) -> bool:
    """True if a workflow task completed after the signal carrying `request_id`: its handler has run."""
    for index, event in enumerate(history):
        if short_type(event) == "WorkflowExecutionSignaled" and request_id in summary(event):
            return any(short_type(e) == "WorkflowTaskCompleted" for e in history[index + 1:])
    return False


# ---------------------------------------------------------------- C14: an update is synchronous


@dataclass
class ChangeCall:
    """One deposit sent one way, and what was true the moment the call returned."""

    how: str  # "update", "signal", or "update, ACCEPTED stage" (a transfer whose handler awaits the network)
    amount: int
    balance_before: int
    returned: Any  # what the call gave back to the caller
    done_at_return: bool  # the history already held the change as done (update completed / signal handled)
    seconds: float

    def row(self) -> dict:
        shown = self.returned if isinstance(self.returned, (int, type(None))) else type(self.returned).__name__
        return {"sent as": self.how, "balance before": self.balance_before, "call returned": repr(shown),
                "change done when it returned": self.done_at_return, "call took (ms)": f"{self.seconds * 1000:.1f}"}


def update_is_synchronous(call: ChangeCall) -> bool:
    """C14: the call changed the state and returned the result: it gave back the new balance (before + amount),
    and when it returned the history already held the change as done."""
    return (isinstance(call.returned, int) and call.returned == call.balance_before + call.amount
            and call.done_at_return)


async def change_and_look(handle: WorkflowHandle, how: str, amount: int, *, balance_before: int) -> ChangeCall:
    """Change the balance by `amount` one way and read the history the moment the call returns.

    `how`: "update" (`execute_update(deposit)`), "signal" (`signal(deposit_signal)`), or "accepted":
    `start_update(transfer, wait_for_stage=ACCEPTED)`, a transfer of `amount` out (so the change is -amount)
    whose handler awaits the payment network. `balance_before`: the balance the caller knows."""
    request_id = unique(f"c14-{how.split()[0]}")
    started = time.perf_counter()
    if how == "update":
        returned = await handle.execute_update(UpdateAccount.deposit, amount, id=request_id)
    elif how == "signal":
        returned = await handle.signal(UpdateAccount.deposit_signal, Transaction("deposit", amount, request_id))
    elif how == "accepted":
        returned = await handle.start_update(UpdateAccount.transfer, Transfer("savings", amount, request_id),
                                             id=request_id, wait_for_stage=WorkflowUpdateStage.ACCEPTED)
        amount = -amount
    else:
        raise ValueError(f"how must be update, signal or accepted, not {how!r}")
    seconds = time.perf_counter() - started
    history = await events(handle)
    done = signal_processed(history, request_id) if how == "signal" else update_completed(history, request_id)
    label = {"accepted": "update, ACCEPTED stage (a transfer)"}.get(how, how)
    return ChangeCall(label, amount, balance_before, returned, done, seconds)


# ---------------------------------------------------------------- update-with-start is not atomic (item 3)


@dataclass
class RejectedStart:
    """A first deposit sent with update-with-start, rejected by the validator, and what it left behind."""

    account_id: str
    handle: WorkflowHandle | None
    rejected: str | None  # the caller's error, explained (None: the deposit was accepted)
    status: str | None  # the workflow's status afterwards (None: no workflow exists)
    balance: int | None
    event_types: list[str] = field(default_factory=list)

    def row(self) -> dict:
        return {"account": self.account_id, "caller saw": self.rejected or "accepted",
                "workflow afterwards": self.status or "none",
                "balance": "-" if self.balance is None else str(self.balance),
                "its history": ", ".join(t.removeprefix("WorkflowExecution") for t in self.event_types) or "-"}


def left_an_empty_account_running(r: RejectedStart) -> bool:
    """Item 3: update-with-start is not atomic. The first update was rejected, yet the workflow it started is
    RUNNING: an empty account (balance 0), whose history holds no update at all."""
    return (r.rejected is not None and r.status == "RUNNING" and r.balance == 0
            and "WorkflowExecutionUpdateAccepted" not in r.event_types)


async def _look(client: Client, account_id: str, workflow_id: str, rejected: str | None) -> RejectedStart:
    handle = client.get_workflow_handle_for(UpdateAccount.run, workflow_id)
    try:
        status = (await handle.describe()).status.name
    except Exception as err:  # noqa: BLE001 - NOT_FOUND: nothing was started
        if "not found" not in str(err).lower():
            raise
        return RejectedStart(account_id, None, rejected, None, None)
    account = await handle.query(UpdateAccount.account_state) if status == "RUNNING" else None
    types = [short_type(e) for e in await events(handle)]
    return RejectedStart(account_id, handle, rejected, status, account.balance if account else None, types)


async def first_deposit_with_start(client: Client, account_id: str, amount: int, task_queue: str,
                                   *, check_first: bool = False) -> RejectedStart:
    """Open `account_id` with a first deposit of `amount` by update-with-start and look at what exists after.

    `check_first=True` is the fix "validate before": the client applies the same rule as the validator
    (`domain.check_transaction` on a new account) and sends nothing if it says no."""
    start = open_account_operation(account_id, task_queue)
    rejected = None
    update_id = unique("first-deposit")
    try:
        if check_first:
            domain.check_transaction(Account(account_id), Transaction("deposit", amount))
        await client.execute_update_with_start_workflow(UpdateAccount.deposit, amount, id=update_id,
                                                        start_workflow_operation=start)
    except domain.AccountError as err:
        rejected = f"refused by the client, nothing sent: {err}"
    except WorkflowUpdateFailedError as err:
        rejected = await update_failure(await start.workflow_handle(), update_id, err)
    return await _look(client, account_id, workflow_id(account_id), rejected)


# ---------------------------------------------------------------- C13: a busy worker delays updates


@dataclass
class LoadRun:
    """`n` deposits sent one after another to an account whose worker has `slots` workflow task slots, each
    while `busy` other workflows have a task of `task_s` seconds running or queued on that worker."""

    slots: int
    busy: int
    task_s: float
    round_trip_s: list[float]  # what each caller waited
    waited_s: list[float]  # per update, from the server's history: its workflow task scheduled -> started

    @property
    def median_wait_s(self) -> float:
        return statistics.median(self.waited_s) if self.waited_s else 0.0

    def row(self) -> dict:
        return {"worker": f"{self.slots} slots, {self.busy} busy workflows" if self.busy
                else f"{self.slots} slots, idle",
                "updates": len(self.round_trip_s),
                "median wait for the worker (ms)": round(self.median_wait_s * 1000, 1),
                "median round trip (ms)": round(statistics.median(self.round_trip_s) * 1000, 1),
                "slowest round trip (ms)": round(max(self.round_trip_s) * 1000, 1)}


def worker_load_delayed_updates(r: LoadRun) -> bool:
    """C13: worker load delays updates. The update's workflow task waited in the queue for the worker: the
    server's history shows a median scheduled -> started wait of at least half a busy task (`task_s / 2`).

    Why that holds on a loaded worker whatever the machine: each deposit is sent only once the server shows a
    busy task STARTED on the worker (so it holds a slot for `task_s` from about now) and the other busy tasks
    queued; the deposit's task waits for the worker to finish one. On an idle worker a poller is already
    waiting and the wait is a few milliseconds."""
    return bool(r.waited_s) and r.median_wait_s >= r.task_s / 2


def update_waits(history: list[HistoryEvent], update_ids: set[str]) -> list[float]:
    """For each accepted update in `update_ids`: seconds from its workflow task's Scheduled to its Started."""
    waits, scheduled, started = [], None, None
    for event in history:
        kind = short_type(event)
        if kind == "WorkflowTaskScheduled":
            scheduled = event.event_time.ToDatetime()
        elif kind == "WorkflowTaskStarted":
            started = event.event_time.ToDatetime()
        elif kind == "WorkflowExecutionUpdateAccepted" and scheduled and started:
            if event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id in update_ids:
                waits.append((started - scheduled).total_seconds())
    return waits


async def updates_under_load(client: Client, handle: WorkflowHandle, task_queue: str, *, slots: int, busy: int | None = None,
                             task_s: float = 0.5, n: int = 6, step: Callable[[], None] | None = None) -> LoadRun:
    """Send `n` deposits of 1 to `handle`, one by one, each while `busy` `BusyEntity` workflows (default: as
    many as the worker has `slots`) each have one workflow task of `task_s` s to run: the deposit is sent once
    the server shows all of those tasks pending and one STARTED (a worker takes a task only into a free slot,
    and holds it until the task completes). `busy=0`: the same measurement on the idle worker.
    `step()` after each deposit."""
    busy = slots if busy is None else busy
    loaders = [await client.start_workflow(BusyEntity.run, task_s, id=unique("nb03-busy"), task_queue=task_queue)
               for _ in range(busy)]
    try:
        ids, round_trips = [], []

        async def states() -> list[str | None]:
            return [(await pending_task(client, loader))["task state"] for loader in loaders]

        for _ in range(n):
            if loaders:
                await until(states, lambda now: not any(now), timeout=30,  # no task of theirs left from before
                            gave_up="the busy workflows did not become idle")
                for loader in loaders:
                    await loader.signal(BusyEntity.more)
                await until(states, lambda now: all(now) and "STARTED" in now, timeout=30, interval=0.005,
                            max_interval=0.02, gave_up="the busy workflows' tasks did not start")
            update_id = unique("nb03-load")
            started = time.perf_counter()
            await handle.execute_update(UpdateAccount.deposit, 1, id=update_id)
            round_trips.append(time.perf_counter() - started)
            ids.append(update_id)
            if step:
                step()
    finally:
        for loader in loaders:
            await loader.signal(BusyEntity.stop)
        for loader in loaders:
            try:
                await asyncio.wait_for(loader.result(), 30)
            except Exception:  # noqa: BLE001 - never leave a busy workflow behind
                await loader.terminate("clean-up of the busy-worker experiment")
    waits = update_waits(await events(handle), set(ids))
    if len(waits) != n:
        raise WorkbookError(f"found {len(waits)} of the {n} updates in the history")
    return LoadRun(slots, busy, task_s, round_trips, waits)
