"""Notebook 05's experiments about C12 (long-lived workflows need continue-as-new, and must handle pending
signals and updates before it), and the checks that decide from a measured result whether the claim held.

* `burst_experiment`: a burst of deposits (signals) and withdrawals (updates) across a chain of runs, audited by
  request id; `lost_nothing` is C12's check (false for `LeakyAccount`, true for `SafeAccount`).
* `update_in_flight`: a withdrawal still posting when the run continues-as-new; `in_flight_update_answered`.
* `update_id_across_runs`: the same update id before and after a continue-as-new. The server deduplicates update
  ids within one run only; across runs, the entity's own ledger of request ids is what recognises a retry.
* `check_exercise`: the exercise's check.

The building blocks (forms, bursts, audits, the chain of runs) are in `tutorial.continue_as_new`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowUpdateStage
from temporalio.workflow import UnfinishedUpdateHandlersWarning

from . import polling
from .continue_as_new import (Audit, Burst, RunInfo, audit, new_account, run_chain, send_burst, short_error,
                              wait_until_idle)
from .workflows.domain import Account, Transaction
from .workflows.long_lived_account import AUDIT_KEEP_IDS, DEFAULT_MAX_EVENTS, EntityStatus, LeakyAccount, SafeAccount
from .workshop import unique


@dataclass
class Experiment:
    """One burst against a fresh entity, audited by request id."""

    entity: str
    workflow_id: str
    burst: Burst
    audit: Audit
    final: Account
    runs: list[RunInfo]
    expected_balance: int
    max_events: int
    seconds: float

    def figures(self) -> dict[str, Any]:
        return {"entity": self.entity, **self.audit.row(), "runs": len(self.runs),
                "update errors": len(self.burst.update_errors), "seconds": round(self.seconds, 1)}

    def line(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.figures().items())


async def burst_experiment(client, task_queue: str, entity: type, deposits: int, withdrawals: int = 0, *,
                           max_events: int = DEFAULT_MAX_EVENTS, opening_balance: int = 1_000, atm_callers: int = 2,
                           on_sent: Callable[[], None] | None = None, workflow_id: str | None = None) -> Experiment:
    """Start a fresh `entity`, send it a burst, close it, and audit what it applied against what was sent."""
    started = time.perf_counter()
    workflow_id = workflow_id or unique(f"nb05-{entity.__name__.lower()}")
    handle = await client.start_workflow(entity.run, new_account(workflow_id[-40:], opening_balance,
                                                                 max_events=max_events),
                                         id=workflow_id, task_queue=task_queue)
    burst = await send_burst(handle, deposits, withdrawals, prefix=workflow_id[-6:], atm_callers=atm_callers,
                             on_sent=on_sent)
    # Close only once the entity is idle: a close arriving mid-burst would end the run through the close path and
    # hide what a continue-as-new does to its inbox.
    await wait_until_idle(handle)
    await handle.signal("close_account")
    final = await handle.result()  # follows the chain to the last run
    return Experiment(
        entity=entity.__name__, workflow_id=workflow_id, burst=burst, audit=audit(burst.sent, list(final.applied)),
        final=final, runs=await run_chain(client, workflow_id), expected_balance=opening_balance + burst.net,
        max_events=max_events, seconds=time.perf_counter() - started,
    )


def lost_nothing(exp: Experiment) -> bool:
    """C12: across every continue-as-new of the burst, nothing sent was lost and nothing applied twice.

    Holds when every request id sent is in the final ledger exactly once, every withdrawal's caller got its
    answer, the balance is what the burst should make it, and the burst really crossed a continue-as-new (one
    run proves nothing). False for `LeakyAccount`: the deposits in its inbox at continue-as-new are gone.
    """
    a = exp.audit
    return (a.sent == len(exp.burst.sent) > 0 and a.processed == a.sent and a.lost == 0 and a.duplicated == 0
            and exp.burst.update_errors == [] and len(exp.burst.update_results) == len(exp.burst.withdrawals)
            and exp.final.balance == exp.expected_balance and len(exp.runs) >= 2)


@dataclass
class InFlight:
    """What the caller of an update saw when the run continued-as-new under it."""

    entity: str
    result: int | None
    error: str | None
    balance_after: int
    run_number_after: int
    applied_times: int  # how often the withdrawal's request id is in the ledger
    expected_balance: int = 0  # the opening balance less the one withdrawal


async def update_in_flight(client, task_queue: str, entity: type, *, post_seconds: float = 1.5,
                           opening_balance: int = 100, amount: int = 10) -> InFlight:
    """Withdraw (an update whose ledger posting takes `post_seconds`), and roll the entity over meanwhile."""
    workflow_id = unique(f"nb05-inflight-{entity.__name__.lower()}")
    handle = await client.start_workflow(
        entity.run, new_account(workflow_id[-40:], opening_balance, post_seconds=post_seconds),
        id=workflow_id, task_queue=task_queue)
    txn = Transaction("withdraw", amount, f"{workflow_id}-atm-1")
    accepted_at = time.monotonic()
    update = await handle.start_update("withdraw", txn, wait_for_stage=WorkflowUpdateStage.ACCEPTED, result_type=int)
    await handle.signal("roll_over")  # continue-as-new now, while the ledger posting is still running
    result, error = None, None
    try:
        result = await update.result()
    except Exception as err:  # noqa: BLE001 - what the caller sees is the point
        error = short_error(err)
    # let the posting finish before we look, so a leaky run has really dropped it
    await asyncio.sleep(max(0.0, post_seconds + 0.3 - (time.monotonic() - accepted_at)))
    status = await wait_until_idle(handle)
    ledger = await handle.query("ledger", result_type=list[str])
    return InFlight(entity=entity.__name__, result=result, error=error, balance_after=status.balance,
                    run_number_after=status.run_number, applied_times=ledger.count(txn.request_id),
                    expected_balance=opening_balance - amount)


def in_flight_update_answered(r: InFlight) -> bool:
    """C12: an update still running when the run continued-as-new was answered, and applied once.

    Holds when the caller got the balance after its withdrawal (no error), the money left once, and the entity
    really moved to a second run. False for `LeakyAccount`: the caller gets an error although the money moved.
    """
    return (r.error is None and r.result == r.expected_balance == r.balance_after and r.applied_times == 1
            and r.run_number_after == 2)


async def check_exercise(client, task_queue: str, withdraw_safely: Callable[..., Any]) -> dict[str, Any]:
    """The exercise's check: `withdraw_safely(handle, txn)` against a LeakyAccount that continues-as-new while
    the withdrawal is posting. It must return the balance, and the money must leave the account once."""
    workflow_id = unique("nb05-exercise")
    handle = await client.start_workflow(LeakyAccount.run, new_account(workflow_id[-40:], 100, post_seconds=1.5),
                                         id=workflow_id, task_queue=task_queue)
    txn = Transaction("withdraw", 10, f"{workflow_id}-atm")
    task = asyncio.ensure_future(withdraw_safely(handle, txn))
    with contextlib.suppress(polling.GaveUp):  # not accepted in 20 s: roll over anyway, the figures will say so
        await polling.until(lambda: handle.query("status", result_type=EntityStatus),
                            lambda status: status.balance == 90 or task.done(), timeout=20)  # accepted, posting
    with warnings.catch_warnings(record=True) as caught:  # a leaky run warns when it drops the update
        warnings.simplefilter("always")
        await handle.signal("roll_over")
        try:
            returned: Any = await asyncio.wait_for(task, 30)
        except Exception as err:  # noqa: BLE001 - reported to the learner as one line
            returned = f"raised {short_error(err)}"
        await asyncio.sleep(1.7)  # the first posting finishes (and is dropped by the closed run)
    status = await wait_until_idle(handle)
    ledger = await handle.query("ledger", result_type=list[str])
    return {"returned": returned, "balance": status.balance, "times in ledger": ledger.count(txn.request_id),
            "retries recognised": status.duplicates_ignored, "run": status.run_number,
            "SDK warnings": sum(issubclass(w.category, UnfinishedUpdateHandlersWarning) for w in caught)}


# ---------------------------------------------------------------------------------------------------------
# Item 6: the server's update-id deduplication ends with the run; the entity's ledger does not
# ---------------------------------------------------------------------------------------------------------


@dataclass
class UpdateIdRetry:
    """The same withdrawal (same update id, same request id) sent three times: twice in run 1, once in run 2."""

    update_id: str
    keep_ids: int  # how many request ids the entity remembers
    answers: list[int]  # what each of the three calls returned
    accepted_per_run: list[int]  # how often each run's history accepted this update id (the server's view)
    recognised: int  # retries the entity's ledger recognised (`duplicates_ignored`)
    balance: int
    expected_balance: int  # the withdrawal taken once

    def row(self) -> dict[str, Any]:
        return {"update id": self.update_id, "answers": self.answers, "accepted per run": self.accepted_per_run,
                "recognised by the ledger": self.recognised, "balance": self.balance,
                "expected balance": self.expected_balance}


async def update_id_across_runs(client, task_queue: str, *, keep_ids: int = AUDIT_KEEP_IDS, opening: int = 100,
                                amount: int = 10) -> UpdateIdRetry:
    """Withdraw with update id X; send X again (same run); deposit once more; continue-as-new; send X again.

    The deposit between is what pushes X out of a ledger that keeps only one id (`keep_ids=1`, the variant).
    """
    workflow_id = unique("nb05-update-id")
    handle = await client.start_workflow(SafeAccount.run, new_account(workflow_id[-40:], opening, max_events=0,
                                                                      keep_ids=keep_ids),
                                         id=workflow_id, task_queue=task_queue)
    update_id = f"{workflow_id[-12:]}-atm-7"
    txn = Transaction("withdraw", amount, update_id)
    answers = [await handle.execute_update(SafeAccount.withdraw, txn, id=update_id)]
    answers.append(await handle.execute_update(SafeAccount.withdraw, txn, id=update_id))  # same run
    await handle.execute_update(SafeAccount.deposit_now, Transaction("deposit", 1, f"{update_id}-teller"),
                                id=f"{update_id}-teller")
    await handle.signal(SafeAccount.roll_over)
    await polling.until(lambda: wait_until_idle(handle), lambda status: status.run_number == 2, timeout=30,
                        gave_up=f"{workflow_id} did not reach its second run")
    answers.append(await handle.execute_update(SafeAccount.withdraw, txn, id=update_id))  # the next run
    status = await wait_until_idle(handle)
    runs = await run_chain(client, workflow_id)
    await handle.signal(SafeAccount.close_account)
    await handle.result()
    return UpdateIdRetry(update_id=update_id, keep_ids=keep_ids, answers=answers,
                         accepted_per_run=[r.update_ids.count(update_id) for r in runs],
                         recognised=status.duplicates_ignored, balance=status.balance,
                         expected_balance=opening - amount + 1)


def server_forgets_update_ids_across_runs(r: UpdateIdRetry) -> bool:
    """Item 6: the server deduplicated the update id within run 1 (accepted once for two calls) and ran it again
    in run 2 (accepted there too): its deduplication does not carry across continue-as-new. (Within run 1 the
    second call never reached the worker: the server answered it with the first call's outcome.)"""
    return r.accepted_per_run == [1, 1]


def ledger_recognised_the_retry(r: UpdateIdRetry) -> bool:
    """Item 6 (C12): the retry that reached the new run was recognised by the entity's ledger of request ids:
    the money left once, and the retry answered with the balance as it stands (nothing taken). False when the
    ledger forgot the id (`keep_ids=1`): the new run takes the money a second time."""
    return r.balance == r.expected_balance and r.recognised == 1 and r.answers[-1] == r.balance
