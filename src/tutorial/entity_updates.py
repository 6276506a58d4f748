"""Notebook 03's client side: open the account with update-with-start, change it, measure it.

The workflows (`UpdateAccount`, `DepositRequest`), their activities and the in-process stand-ins for the
outside world live in `tutorial.workflows.update_account`; this module only calls them and returns what it
saw, as data the notebook prints, charts and asserts on.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy

from . import errors
from .errors import WorkbookError
from .readiness import is_closed
from .widgets import note
from .history import event_types, history_frame
from .polling import Seen, until
from .workflows import domain
from .workflows.domain import Account, Transaction
from .workflows.update_account import DepositRequest, Transfer, UpdateAccount, database, payment_network
from .workshop import scoped, unique


def workflow_id(account_id: str) -> str:
    """The entity's workflow id: one account, one workflow id (scoped to the learner)."""
    return scoped(f"nb03-account-{account_id}")


def open_account_operation(account_id: str, task_queue: str) -> WithStartWorkflowOperation:
    """Start the account's workflow if it is not running; use the running one if it is."""
    return WithStartWorkflowOperation(
        UpdateAccount.run, account_id, id=workflow_id(account_id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def deposit_with_start(client: Client, account_id: str, amount: int, task_queue: str
                             ) -> tuple[int, WorkflowHandle]:
    """Update-with-start: deposit into the account, creating its workflow lazily on the first deposit.
    Returns the new balance and the workflow handle."""
    start = open_account_operation(account_id, task_queue)
    balance = await client.execute_update_with_start_workflow(UpdateAccount.deposit, amount,
                                                              start_workflow_operation=start)
    return balance, await start.workflow_handle()


# ---------------------------------------------------------------- rejected, or failed after acceptance


REJECTED = "rejected by the validator"
FAILED_AFTER_ACCEPTANCE = "failed after it was accepted"


async def was_accepted(handle: WorkflowHandle, update_id: str) -> bool:
    """True if the history holds the update's `WorkflowExecutionUpdateAccepted` event: a validator that said no
    leaves no trace, an update that failed in its handler was accepted first."""
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            if event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id == update_id:
                return True
    return False


async def update_failure(handle: WorkflowHandle, update_id: str, err: WorkflowUpdateFailedError) -> str:
    """One sentence for a failed update: "rejected by the validator: ..." or "failed after it was accepted: ...".

    Both reach the caller as `WorkflowUpdateFailedError`; only the history tells them apart. So this reads it,
    only on this (failure) path: a successful update costs no extra call."""
    verdict = FAILED_AFTER_ACCEPTANCE if await was_accepted(handle, update_id) else REJECTED
    return f"{verdict}: {errors.explain(err).removeprefix('Update failed: ')}"


async def signal_then_query(handle: WorkflowHandle, txn: Transaction, *, timeout: float = 10.0,
                            interval: float = 0.0) -> tuple[Account, int]:
    """The signal + query round trip: signal a deposit, then query until it is visible.
    Returns the account that shows it and how many queries it took. `interval` 0: ask again at once
    (the measurement wants the moment the deposit shows, not a polite poll)."""
    await handle.signal(UpdateAccount.deposit_signal, txn)
    seen = await until(lambda: handle.query(UpdateAccount.account_state),
                       lambda account: txn.request_id in account.applied, timeout=timeout, interval=interval,
                       gave_up=f"the signal {txn.request_id} was not visible")
    return seen.value, seen.queries


async def balance_reaches(handle: WorkflowHandle, balance: int, *, timeout: float = 10.0) -> Seen[Account]:
    """Query until the account's balance is `balance` (updates that were waiting may complete a moment apart)."""
    return await until(lambda: handle.query(UpdateAccount.account_state),
                       lambda account: account.balance == balance, timeout=timeout,
                       gave_up=lambda account: f"the balance is {account.balance if account else '?'}, "
                                               f"not {balance}")


def reset_outside_world(delay_s: float = 0.2) -> None:
    """Forget what the stand-ins recorded (the notebook calls it so a re-run starts clean)."""
    payment_network.delay_s = delay_s
    payment_network.sent.clear()
    database.clear()


# ---------------------------------------------------------------- bad updates, side by side


async def try_updates(handle: WorkflowHandle, attempts: Sequence[tuple[str, Any, Any]]) -> list[dict]:
    """Send each `(label, update, argument)` and report what the client saw and what the history gained.

    "message" says "rejected by the validator: ..." or "failed after it was accepted: ..." (`update_failure`);
    "exception" is None for an update that succeeded (the notebook's attempts should all fail)."""
    rows = []
    for label, update, arg in attempts:
        before = len(await event_types(handle))
        row: dict[str, Any] = {"update": label, "exception": None, "cause": None, "message": ""}
        update_id = unique("bad-update")
        try:
            await handle.execute_update(update, arg, id=update_id)
        except WorkflowUpdateFailedError as err:
            row.update(exception=type(err).__name__, cause=getattr(err.cause, "type", None),
                       message=await update_failure(handle, update_id, err))
        events = (await history_frame(handle)).iloc[before:]
        row["events added"] = len(events)
        row["new events (without workflow tasks)"] = ", ".join(
            t.removeprefix("WorkflowExecution") for t in events["type"] if not t.startswith("WorkflowTask"))
        rows.append(row)
    return rows


# ---------------------------------------------------------------- concurrent transfers


@dataclass
class TransferRun:
    """`n` transfers of the same amount sent at once to one fresh account, through one transfer handler."""

    handler: str
    handle: WorkflowHandle
    opening: int
    account: Account  # the state after every transfer returned
    paid: int  # what the payment network sent out
    balances: list[int]  # what each update returned, in request order
    seconds: list[float]  # each update's round trip, in request order

    @property
    def debited(self) -> int:
        return self.opening - self.account.balance

    @property
    def lost(self) -> int:
        """Money paid out that the balance does not show."""
        return self.paid - self.debited

    def row(self) -> dict:
        return {"handler": self.handler, "paid out": self.paid, "debited": self.debited, "lost": self.lost,
                "balances returned": sorted(set(self.balances)),
                "fastest update (s)": f"{min(self.seconds):.2f}", "slowest update (s)": f"{max(self.seconds):.2f}"}


async def concurrent_transfers(client: Client, update, name: str, task_queue: str, *, n: int = 8,
                               amount: int = 10, opening: int = 1000, payee: str = "grocer",
                               step: Callable[[], None] | None = None) -> TransferRun:
    """Open a fresh account with `opening`, send `n` transfers of `amount` at the same time through
    `update` (`UpdateAccount.transfer` or `.transfer_unlocked`), and report what was paid and debited.
    `step()` is called as each transfer returns (a progress bar)."""
    opened, handle = await deposit_with_start(client, f"{name}-{uuid.uuid4().hex[:5]}", opening, task_queue)

    async def one(i: int) -> tuple[int, float]:
        started = time.perf_counter()
        balance = await handle.execute_update(update, Transfer(payee, amount, f"{name}-{i}"))
        if step:
            step()
        return balance, time.perf_counter() - started

    results = await asyncio.gather(*[one(i) for i in range(n)])
    account = await handle.query(UpdateAccount.account_state)
    paid = sum(sent for _, _, sent, _ in payment_network.sent_from(account.account_id))
    return TransferRun(handler=name, handle=handle, opening=opened, account=account, paid=paid,
                       balances=[b for b, _ in results], seconds=[s for _, s in results])


# ---------------------------------------------------------------- measured side by side


UPDATE, SIGNAL_QUERY, PER_REQUEST = "update", "signal, then query until visible", "workflow per request"


@dataclass
class SideBySide:
    """One deposit of 1, three ways, `n` times each, interleaved; latencies in milliseconds."""

    latency_ms: dict[str, list[float]]
    update_results: list[int]  # the balance each update returned
    request_results: list[int]  # the balance each workflow-per-request returned (its own database row)
    queries: list[int]  # queries each signal needed before the deposit was visible

    @property
    def n(self) -> int:
        return len(self.update_results)

    def summary(self) -> pd.DataFrame:
        """One row per pattern: calls per change, p50 and p95 in ms."""
        calls = {UPDATE: "1 update", SIGNAL_QUERY: f"1 signal + {pd.Series(self.queries).mean():.2f} queries (mean)",
                 PER_REQUEST: "1 start + 1 result"}
        return pd.DataFrame([{"pattern": name, "calls per change": calls[name],
                              "p50 ms": float(pd.Series(values).quantile(0.5)),
                              "p95 ms": float(pd.Series(values).quantile(0.95))}
                             for name, values in self.latency_ms.items()])

    @property
    def p50(self) -> dict[str, float]:
        return {row["pattern"]: row["p50 ms"] for row in self.summary().to_dict("records")}


async def measure_side_by_side(client: Client, handle: WorkflowHandle, account_id: str, task_queue: str, *,
                               n: int = 120, step: Callable[[], None] | None = None) -> SideBySide:
    """Deposit 1 into the account `n` times each way, interleaved so a busy machine slows all three alike:
    an update on `handle`; a signal to `handle`, then queries until visible; and a `DepositRequest` workflow
    for `account_id` (its balance lives in the stand-in database). `step()` after each round."""
    latency: dict[str, list[float]] = {UPDATE: [], SIGNAL_QUERY: [], PER_REQUEST: []}
    result = SideBySide(latency, [], [], [])
    for i in range(n):
        started = time.perf_counter()
        result.update_results.append(await handle.execute_update(UpdateAccount.deposit, 1))
        latency[UPDATE].append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        _seen, queries = await signal_then_query(handle, Transaction("deposit", 1, f"sq-{i}"))
        latency[SIGNAL_QUERY].append((time.perf_counter() - started) * 1000)
        result.queries.append(queries)

        started = time.perf_counter()
        result.request_results.append(await client.execute_workflow(
            DepositRequest.run, args=[account_id, Transaction("deposit", 1, f"w-{i}")],
            id=unique("nb03-request"), task_queue=task_queue))
        latency[PER_REQUEST].append((time.perf_counter() - started) * 1000)
        if step:
            step()
    return result


# ---------------------------------------------------------------- the form


UPDATES = {"deposit": UpdateAccount.deposit, "withdraw": UpdateAccount.withdraw}


def parse_form(values: dict[str, str]) -> dict:
    """Only what the form itself must do: choose the update and read a number. Everything else (negative,
    zero, too large, more than the balance) is the validator's job, so the form sends it and the account
    rejects it."""
    operation = domain.parse_operation(values.get("operation", ""))
    text = (values.get("amount") or "").strip()
    try:
        amount = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise domain.InvalidAmount(f"amount must be a whole number, not {text!r}") from None
    return {"operation": operation, "amount": amount}


FORM_TIMEOUT = ("No answer within {timeout:g} s: the update waits in the server and is applied when a worker "
                "accepts it. Do not send it again: the form would send it under a new update id, and it would "
                "count twice.")


class FormAccount:
    """The account the form updates. Once it has closed (the clean-up cell closes it), the next update opens a
    fresh one, with a new id, by update-with-start, and the answer says so.

    Every update carries an explicit update id, so that, only when it fails, `update_failure` can tell a
    validator's "no" from a failure after acceptance. `opened` (a list) collects the fresh accounts, for the
    clean-up."""

    def __init__(self, client: Client, handle: WorkflowHandle, task_queue: str, *,
                 opened: list[WorkflowHandle] | None = None, prefix: str = "form"):
        self.client = client
        self.handle = handle
        self.task_queue = task_queue
        self.opened = opened if opened is not None else []
        self.prefix = prefix
        self.reopened: list[str] = []  # the account ids opened in place of a closed one

    async def submit(self, operation: str, amount: int) -> int:
        """Run the form's update and return the new balance; a failure becomes one readable sentence."""
        update, update_id = UPDATES[operation], unique("form-update")
        try:
            try:
                return await self.handle.execute_update(update, amount, id=update_id)
            except Exception as err:  # noqa: BLE001 - only "closed" is handled here
                if not is_closed(err):
                    raise
            return await self._with_start(update, amount, update_id)
        except WorkflowUpdateFailedError as err:
            raise WorkbookError(await update_failure(self.handle, update_id, err)) from err

    async def _with_start(self, update, amount: int, update_id: str) -> int:
        closed = self.handle.id
        account_id = f"{self.prefix}-{uuid.uuid4().hex[:5]}"
        start = open_account_operation(account_id, self.task_queue)
        try:
            balance = await self.client.execute_update_with_start_workflow(update, amount, id=update_id,
                                                                           start_workflow_operation=start)
        except WorkflowUpdateFailedError:  # a rejected first update still opened the account (step 2)
            await self._adopt(start, closed, account_id)
            raise
        await self._adopt(start, closed, account_id)
        return balance

    async def _adopt(self, start: WithStartWorkflowOperation, closed: str, account_id: str) -> None:
        """The fresh account is the form's from now on."""
        self.handle = await start.workflow_handle()
        self.opened.append(self.handle)
        self.reopened.append(account_id)
        note(f"account {closed} has closed (the clean-up cell closes it): update-with-start opened "
             f"{self.handle.id} for you")


async def submit(handle: WorkflowHandle, operation: str, amount: int) -> int:
    """Run the form's update on `handle` and return the new balance; a failure becomes one readable sentence."""
    update_id = unique("form-update")
    try:
        return await handle.execute_update(UPDATES[operation], amount, id=update_id)
    except WorkflowUpdateFailedError as err:
        raise WorkbookError(await update_failure(handle, update_id, err)) from err
