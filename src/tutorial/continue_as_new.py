"""The client side of notebook 05: read its forms, send a burst, audit it by request id, read the chain of runs.

The workflows are in `tutorial.workflows.long_lived_account`, the server's limits in `tutorial.limits`, the
charts in `tutorial.charts.continue_as_new`; the notebook's experiments and the checks that decide its claims
are in `tutorial.rollover_experiments` (C12) and `tutorial.update_limits` (C15, the per-run message limits).
This module runs in the notebook (or a test), never in the sandbox.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import limits, polling
from .workflows.domain import Account, Transaction
from .workflows.long_lived_account import EntityStatus, Handover

MIN_THRESHOLD = 20  # below this a run continues-as-new before it has done anything
MAX_BURST_DEPOSITS = 2_000  # what a form may ask for: a burst that runs in a minute on a laptop
MAX_BURST_WITHDRAWALS = 200


# ---------------------------------------------------------------------------------------------------------
# The notebook's forms: text in, numbers out, or a short ValueError (nothing is sent)
# ---------------------------------------------------------------------------------------------------------


def whole_number(name: str, text: str, *, zero_ok: bool = False) -> int:
    """A form field as a whole number (commas and underscores allowed), or a ValueError that names the field as
    the form labels it: "deposits: must be positive, not '-5'", "events: enter a whole number, not 'fifty'"."""
    raw = (text or "").strip()
    cleaned = raw.replace(",", "").replace("_", "")
    if not cleaned:
        raise ValueError(f"{name}: enter a whole number")
    if cleaned.startswith("-") and cleaned[1:].isdigit():
        raise ValueError(f"{name}: must be positive{' or 0' if zero_ok else ''}, not {raw!r}")
    if not cleaned.isdigit():
        raise ValueError(f"{name}: enter a whole number, not {raw!r}")
    return int(cleaned)


def parse_threshold(values: dict[str, str]) -> dict[str, int]:
    """The threshold form (`events`): a demo threshold from 20 events up to the server's hard limit."""
    events = whole_number("events", values["events"])
    hard_limit = limits.HISTORY_EVENTS_MAX.value
    if not MIN_THRESHOLD <= events <= hard_limit:
        raise ValueError(f"events: from {MIN_THRESHOLD} to {hard_limit:,} (the server's hard limit), not {events:,}")
    return {"events": events}


def parse_burst(values: dict[str, str]) -> dict[str, int]:
    """The burst form (`deposits`, `withdrawals`, `threshold`): sizes a laptop sends in a minute, and a threshold
    low enough that the burst crosses at least one continue-as-new."""
    numbers = {name: whole_number(name, text, zero_ok=name == "withdrawals") for name, text in values.items()}
    if not 1 <= numbers["deposits"] <= MAX_BURST_DEPOSITS:
        raise ValueError(f"deposits: from 1 to {MAX_BURST_DEPOSITS:,}, not {numbers['deposits']:,}")
    if not 0 <= numbers["withdrawals"] <= MAX_BURST_WITHDRAWALS:
        raise ValueError(f"withdrawals: from 0 to {MAX_BURST_WITHDRAWALS}, not {numbers['withdrawals']:,}")
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
                burst.update_errors.append(f"{txn.request_id}: {short_error(err)}")
            if on_sent:
                on_sent()

    senders = max(1, signal_senders)
    callers = max(1, atm_callers)
    started = time.perf_counter()
    await asyncio.gather(*(signals(burst.deposits[i::senders]) for i in range(senders)),
                         *(updates(burst.withdrawals[i::callers]) for i in range(callers)))
    burst.seconds = time.perf_counter() - started
    return burst


def short_error(err: BaseException) -> str:
    """An exception in one line: its type, and the RPC or failure underneath it (the caller's view)."""
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
    updates_accepted: int  # updates (withdraw, deposit_now) this run accepted
    task_failures: int  # workflow tasks the server refused (for example: new signals came while closing)
    carried_in: int  # pending transactions in this run's input
    carried_out: int  # pending transactions in the next run's input (0 if it did not continue)
    closed_by: str
    update_ids: tuple[str, ...] = ()  # the update ids this run accepted, in order (not shown in `chain_frame`)


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
        update_ids = tuple(e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
                           for e in events if e.HasField("workflow_execution_update_accepted_event_attributes"))
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
            updates_accepted=len(update_ids),
            task_failures=sum(e.HasField("workflow_task_failed_event_attributes") for e in events),
            carried_in=len(handover.pending), carried_out=carried_out, closed_by=closed_by, update_ids=update_ids,
        ))
        run_id = started.continued_execution_run_id or None
    return list(reversed(runs))


def chain_frame(runs: list[RunInfo]) -> pd.DataFrame:
    """The chain as a DataFrame (run ids cut to 8 characters, for reading)."""
    frame = pd.DataFrame([r.__dict__ for r in runs]).drop(columns=["update_ids"], errors="ignore")
    for column in ("run_id", "first_execution_run_id", "continued_from"):
        frame[column] = frame[column].str[:8]
    return frame
