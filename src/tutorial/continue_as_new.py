"""The client side of notebook 05: read its forms, send a burst, audit it by request id, read the chain of runs.

The workflows are in `tutorial.workflows.long_lived_account`, the server's limits in `tutorial.limits`, the
charts in `tutorial.charts.continue_as_new`. This module runs in the notebook (or a test), never in the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from temporalio.client import WorkflowUpdateStage
from temporalio.workflow import UnfinishedUpdateHandlersWarning

from . import limits, polling
from .workflows.domain import Account, Transaction
from .workflows.long_lived_account import DEFAULT_MAX_EVENTS, EntityStatus, Handover, LeakyAccount
from .workshop import unique

MIN_THRESHOLD = 20  # below this a run continues-as-new before it has done anything
MAX_BURST_DEPOSITS = 2_000  # what a form may ask for: a burst that runs in a minute on a laptop
MAX_BURST_WITHDRAWALS = 200


# ---------------------------------------------------------------------------------------------------------
# The notebook's forms: text in, numbers out, or a short ValueError (nothing is sent)
# ---------------------------------------------------------------------------------------------------------


def whole_number(name: str, text: str) -> int:
    """A form field as a whole number (commas and underscores allowed), or a ValueError naming the field."""
    cleaned = (text or "").strip().replace(",", "").replace("_", "")
    if not cleaned.isdigit():
        raise ValueError(f"{name}: enter a whole number, not {(text or '').strip()!r}")
    return int(cleaned)


def parse_threshold(values: dict[str, str]) -> dict[str, int]:
    """The threshold form (`events`): a demo threshold from 20 events up to the server's hard limit."""
    events = whole_number("events", values["events"])
    hard_limit = limits.HISTORY_EVENTS_MAX.value
    if not MIN_THRESHOLD <= events <= hard_limit:
        raise ValueError(f"the threshold must be from {MIN_THRESHOLD} to {hard_limit:,} events "
                         "(the server's hard limit)")
    return {"events": events}


def parse_burst(values: dict[str, str]) -> dict[str, int]:
    """The burst form (`deposits`, `withdrawals`, `threshold`): sizes a laptop sends in a minute, and a threshold
    low enough that the burst crosses at least one continue-as-new."""
    numbers = {name: whole_number(name, text) for name, text in values.items()}
    if not (1 <= numbers["deposits"] <= MAX_BURST_DEPOSITS and 0 <= numbers["withdrawals"] <= MAX_BURST_WITHDRAWALS):
        raise ValueError(f"deposits: 1 to {MAX_BURST_DEPOSITS:,}; withdrawals: 0 to {MAX_BURST_WITHDRAWALS}")
    if not MIN_THRESHOLD <= numbers["threshold"] <= numbers["deposits"]:
        raise ValueError(f"threshold: from {MIN_THRESHOLD} events up to the number of deposits "
                         "(or nothing continues-as-new)")
    return numbers


def threshold_row(events: int) -> dict[str, str]:
    """The demo threshold as a row of `limits.rows`, to read it beside the server's real numbers."""
    return {"limit": f"demo threshold (this notebook): {events:,} events",
            "the server": "nothing: the entity itself continues-as-new", "dynamic config": "Handover.max_events"}


# ---------------------------------------------------------------------------------------------------------
# Talking to one entity: its first input, and waiting until it has applied what it was sent
# ---------------------------------------------------------------------------------------------------------


def new_account(account_id: str, opening_balance: int = 0, **handover: Any) -> Handover:
    """The first run's input: an account with an opening balance (the opening deposit has no request id)."""
    return Handover(account=Account(account_id=account_id, balance=opening_balance), **handover)


async def wait_until_idle(handle, timeout: float = 30.0) -> EntityStatus:
    """Query until the latest run has nothing queued and no workflow task pending (a query may lag a signal).

    The server's view is read before and after the query: both must show the same run, the same history
    length and no task waiting, or the answer may describe a moment that has already passed. Still busy after
    `timeout` seconds: raises `polling.GaveUp` (a `WorkbookError`), never returns a status that is not idle.
    """

    async def look() -> tuple[bool, EntityStatus]:
        before = await handle.describe()
        status = await handle.query("status", result_type=EntityStatus)
        after = await handle.describe()
        steady = (before.run_id == after.run_id == status.run_id and before.history_length == after.history_length
                  and not after.raw_description.HasField("pending_workflow_task"))
        return steady, status

    def busy(last: tuple[bool, EntityStatus] | None) -> str:
        if last is None:
            waiting = "no answer to the status query"
        else:
            steady, status = last
            waiting = (f"{status.queued} deposits still queued" if steady
                       else "a workflow task is still waiting") + f", run {status.run_number}"
        return f"{handle.id} was not idle ({waiting}): is its worker running and keeping up?"

    seen = await polling.until(look, lambda answer: answer[0] and answer[1].queued == 0, timeout=timeout,
                               interval=0.02, max_interval=0.1, gave_up=busy)
    return seen.value[1]


async def watch_growth(handle, steps: int, per_step: int, prefix: str = "g") -> list[dict[str, Any]]:
    """Send `per_step` deposits `steps` times; after each step read the history's length and size."""
    samples: list[dict[str, Any]] = []
    status = await wait_until_idle(handle)
    samples.append(_sample(0, status))
    for step in range(steps):
        await asyncio.gather(*(handle.signal("deposit", Transaction("deposit", 1, f"{prefix}-{step}-{i}"))
                               for i in range(per_step)))
        status = await wait_until_idle(handle)
        samples.append(_sample((step + 1) * per_step, status))
    return samples


def _sample(sent: int, status: EntityStatus) -> dict[str, Any]:
    return {"deposits sent": sent, "history length": status.history_length,
            "history bytes": status.history_size, "suggested": status.continue_as_new_suggested,
            "run": status.run_number, "balance": status.balance}


# ---------------------------------------------------------------------------------------------------------
# A burst, and an audit by request id
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Burst:
    """What a burst sent, and what its callers saw."""

    deposits: list[Transaction]
    withdrawals: list[Transaction]
    update_results: list[int] = field(default_factory=list)
    update_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sent(self) -> list[Transaction]:
        return self.deposits + self.withdrawals

    @property
    def net(self) -> int:
        """What the burst should change the balance by, if every transaction is applied once."""
        return sum(t.amount for t in self.deposits) - sum(t.amount for t in self.withdrawals)


async def send_burst(handle, deposits: int, withdrawals: int = 0, *, amount: int = 1, prefix: str = "b",
                     signal_senders: int = 32, atm_callers: int = 2,
                     on_sent: Callable[[], None] | None = None) -> Burst:
    """Send `deposits` signals and `withdrawals` updates at the same time, each with its own request id.

    Deposits go out from `signal_senders` concurrent senders (a payroll batch); withdrawals from `atm_callers`
    callers, each waiting for its answer before the next (ATMs). A failed update is recorded, not raised: the
    callers' view is part of what we measure. `on_sent` is called after each message (for a progress bar).
    """
    burst = Burst(
        deposits=[Transaction("deposit", amount, f"{prefix}-d{i}") for i in range(deposits)],
        withdrawals=[Transaction("withdraw", amount, f"{prefix}-w{i}") for i in range(withdrawals)],
    )

    async def signals(share: list[Transaction]) -> None:
        for txn in share:
            await handle.signal("deposit", txn)
            if on_sent:
                on_sent()

    async def updates(share: list[Transaction]) -> None:
        for txn in share:
            try:
                burst.update_results.append(await handle.execute_update("withdraw", txn, result_type=int))
            except Exception as err:  # noqa: BLE001 - measured, then reported
                burst.update_errors.append(f"{txn.request_id}: {_short(err)}")
            if on_sent:
                on_sent()

    senders = max(1, signal_senders)
    callers = max(1, atm_callers)
    started = time.perf_counter()
    await asyncio.gather(*(signals(burst.deposits[i::senders]) for i in range(senders)),
                         *(updates(burst.withdrawals[i::callers]) for i in range(callers)))
    burst.seconds = time.perf_counter() - started
    return burst


def _short(err: BaseException) -> str:
    cause = err.__cause__
    return f"{type(err).__name__}: {cause if cause is not None else err}"[:200]


@dataclass
class Audit:
    """Sent against applied, by request id."""

    sent: int
    processed: int  # distinct request ids of this burst that the account applied
    lost: int  # sent but never applied
    duplicated: int  # applied more than once
    lost_ids: list[str]

    def row(self) -> dict[str, int]:
        return {"sent": self.sent, "processed": self.processed, "lost": self.lost, "duplicated": self.duplicated}


def audit(sent: list[Transaction], ledger: list[str]) -> Audit:
    """Compare what was sent with what the account applied (its ledger of request ids)."""
    sent_ids = [t.request_id for t in sent]
    wanted = set(sent_ids)
    counts = Counter(rid for rid in ledger if rid in wanted)
    lost = [rid for rid in sent_ids if rid not in counts]
    return Audit(sent=len(sent_ids), processed=len(counts), lost=len(lost),
                 duplicated=sum(n - 1 for n in counts.values()), lost_ids=lost)


# ---------------------------------------------------------------------------------------------------------
# The chain of runs, as the server recorded it
# ---------------------------------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """One run in a continue-as-new chain, as the server recorded it."""

    run_number: int
    run_id: str
    first_execution_run_id: str
    continued_from: str
    events: int
    bytes: int
    deposits_delivered: int  # deposit signals the server appended to this run's history
    withdrawals_accepted: int  # withdraw updates this run accepted
    task_failures: int  # workflow tasks the server refused (for example: new signals came while closing)
    carried_in: int  # pending transactions in this run's input
    carried_out: int  # pending transactions in the next run's input (0 if it did not continue)
    closed_by: str


def _decode_handover(client, payloads) -> Handover:
    return client.data_converter.payload_converter.from_payloads(list(payloads.payloads), [Handover])[0]


async def run_chain(client, workflow_id: str) -> list[RunInfo]:
    """Every run of `workflow_id`, first to latest, read from the server's histories (not from the workflow).

    Walks back from the latest run: each run's start event names the run it continued from.
    """
    runs: list[RunInfo] = []
    run_id: str | None = (await client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events = list(history.events)
        started = events[0].workflow_execution_started_event_attributes
        handover = _decode_handover(client, started.input)
        last = events[-1]
        carried_out, closed_by = 0, "still running"
        if last.HasField("workflow_execution_continued_as_new_event_attributes"):
            next_input = last.workflow_execution_continued_as_new_event_attributes.input
            carried_out = len(_decode_handover(client, next_input).pending)
            closed_by = "continued as new"
        elif last.HasField("workflow_execution_completed_event_attributes"):
            closed_by = "completed"
        elif last.HasField("workflow_execution_terminated_event_attributes"):
            closed_by = "terminated"
        elif last.HasField("workflow_execution_failed_event_attributes"):
            closed_by = "failed"
        runs.append(RunInfo(
            run_number=handover.run_number, run_id=run_id,
            first_execution_run_id=started.first_execution_run_id,
            continued_from=started.continued_execution_run_id, events=len(events),
            bytes=sum(e.ByteSize() for e in events),
            deposits_delivered=sum(e.HasField("workflow_execution_signaled_event_attributes")
                                   and e.workflow_execution_signaled_event_attributes.signal_name == "deposit"
                                   for e in events),
            withdrawals_accepted=sum(e.HasField("workflow_execution_update_accepted_event_attributes")
                                     for e in events),
            task_failures=sum(e.HasField("workflow_task_failed_event_attributes") for e in events),
            carried_in=len(handover.pending), carried_out=carried_out, closed_by=closed_by,
        ))
        run_id = started.continued_execution_run_id or None
    return list(reversed(runs))


def chain_frame(runs: list[RunInfo]) -> pd.DataFrame:
    """The chain as a DataFrame (run ids cut to 8 characters, for reading)."""
    frame = pd.DataFrame([r.__dict__ for r in runs])
    for column in ("run_id", "first_execution_run_id", "continued_from"):
        frame[column] = frame[column].str[:8]
    return frame


# ---------------------------------------------------------------------------------------------------------
# The notebook's experiments: a burst, an update in flight, the exercise's check
# ---------------------------------------------------------------------------------------------------------


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


@dataclass
class InFlight:
    """What the caller of an update saw when the run continued-as-new under it."""

    entity: str
    result: int | None
    error: str | None
    balance_after: int
    run_number_after: int
    applied_times: int  # how often the withdrawal's request id is in the ledger


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
        error = _short(err)
    # let the posting finish before we look, so a leaky run has really dropped it
    await asyncio.sleep(max(0.0, post_seconds + 0.3 - (time.monotonic() - accepted_at)))
    status = await wait_until_idle(handle)
    ledger = await handle.query("ledger", result_type=list[str])
    return InFlight(entity=entity.__name__, result=result, error=error, balance_after=status.balance,
                    run_number_after=status.run_number, applied_times=ledger.count(txn.request_id))


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
            returned = f"raised {_short(err)}"
        await asyncio.sleep(1.7)  # the first posting finishes (and is dropped by the closed run)
    status = await wait_until_idle(handle)
    ledger = await handle.query("ledger", result_type=list[str])
    return {"returned": returned, "balance": status.balance, "times in ledger": ledger.count(txn.request_id),
            "retries recognised": status.duplicates_ignored, "run": status.run_number,
            "SDK warnings": sum(issubclass(w.category, UnfinishedUpdateHandlersWarning) for w in caught)}
