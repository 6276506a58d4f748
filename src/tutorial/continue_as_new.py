"""Workflows for notebook 05: continue-as-new with pending signals and updates, losing nothing.

An entity workflow (the bank account of `domain.py`) lives for ever, but its event history may not: the server
fails a run at 51,200 events or 50 MB, warns from 10,240 events or 10 MB, and suggests continue-as-new much
earlier. Continue-as-new closes the run and starts a fresh one, with the same workflow id, whose input is
whatever the old run hands over. The hard part is the work still in flight at that moment:

* signals already delivered to the run but still waiting in the workflow's own buffer (`inbox`);
* update handlers still running (here: a withdrawal waiting for its ledger posting).

Two entities share every handler and differ only in how they continue-as-new:

* `LeakyAccount` hands over the account and nothing else, and does not wait for its handlers: under a burst it
  silently drops the buffered deposits, and a withdrawal in flight fails at its caller although the money moved.
* `SafeAccount` waits for `workflow.all_handlers_finished()`, then drains the inbox into the next run's input.

Every transaction carries a `request_id`, so the entity can recognise a retry, and a test can prove that each
transaction sent was applied exactly once. The client-side helpers at the end (burst, audit, run chain) are what
the notebook and the tests use to measure it.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.exceptions import ApplicationError

from .workflows.domain import Account, AccountError, Transaction, apply, check_transaction, close

# The server's limits (Temporal documentation, server defaults).
EVENTS_LIMIT = 51_200  # a run is terminated beyond this many events
EVENTS_WARNING = 10_240  # the server logs warnings from here on
BYTES_LIMIT = 50 * 1024 * 1024
BYTES_WARNING = 10 * 1024 * 1024
SUGGEST_EVENTS = 4 * 1024  # dynamic config limit.historyCount.suggestContinueAsNew (measured in the tests)
SUGGEST_BYTES = 4 * 1024 * 1024  # dynamic config limit.historySize.suggestContinueAsNew

DEFAULT_MAX_EVENTS = 500  # the demo threshold: far below the real limits, so a notebook sees several runs
AUDIT_KEEP_IDS = 100_000  # keep every request id (an audit trail); a real entity keeps a short window


# ---------------------------------------------------------------------------------------------------------
# What one run hands the next, and what a query shows
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Handover:
    """The input of every run: the account plus whatever the previous run received but did not process yet."""

    account: Account
    pending: list[Transaction] = field(default_factory=list)  # received by an earlier run, not applied yet
    max_events: int = DEFAULT_MAX_EVENTS  # continue-as-new once the history is this long (0: only when suggested)
    run_number: int = 1
    keep_ids: int = AUDIT_KEEP_IDS  # how many applied request ids the account remembers (to spot retries)
    post_seconds: float = 0.0  # how long posting a withdrawal to the ledger takes (the update's async step)
    duplicates_ignored: int = 0  # retries recognised by their request id, over all runs
    rejected: list[str] = field(default_factory=list)  # "request_id: reason" for transactions the rules refused


@dataclass
class EntityStatus:
    """What `status` (a query) reports about the current run."""

    run_number: int
    run_id: str
    first_execution_run_id: str
    continued_run_id: str | None
    history_length: int
    history_size: int
    continue_as_new_suggested: bool
    max_events: int
    balance: int
    transactions: int
    queued: int  # signals in the inbox, not applied yet
    carried_in: int  # pending transactions this run received in its input
    processed_this_run: int
    duplicates_ignored: int
    rejected: int


@activity.defn
async def post_to_ledger(txn: Transaction, seconds: float) -> str:
    """Stands for a call to another system (the bank's ledger); it takes `seconds`."""
    await asyncio.sleep(seconds)
    return f"posted {txn.request_id}"


# ---------------------------------------------------------------------------------------------------------
# The entity: every handler is shared; the two workflows differ only in how they continue-as-new
# ---------------------------------------------------------------------------------------------------------


class _AccountEntity:
    """Handlers and state shared by both entities (not a workflow by itself).

    Deposits arrive as **signals**: fire and forget, so the handler only buffers them in `inbox` and the main
    loop applies them. Withdrawals arrive as **updates**: the caller waits for the new balance; the handler
    applies the withdrawal, then awaits its ledger posting (an activity) before it answers.
    """

    @workflow.init
    def __init__(self, start: Handover) -> None:
        self.start = start
        self.account = start.account
        self.inbox: list[Transaction] = list(start.pending)  # carried work goes first
        self.applied_ids = set(start.account.applied)
        self.duplicates_ignored = start.duplicates_ignored
        self.rejected = list(start.rejected)
        self.max_events = start.max_events
        self.processed_this_run = 0
        self.roll_over_requested = False
        self.closing = False

    # -- what the world can send ------------------------------------------------------------------------

    @workflow.signal
    def deposit(self, txn: Transaction) -> None:
        """Buffer a deposit; the main loop applies it."""
        self.inbox.append(txn)

    @workflow.update
    async def withdraw(self, txn: Transaction) -> int:
        """Withdraw, post it to the ledger, and return the balance right after this withdrawal."""
        if txn.request_id in self.applied_ids:  # a retry of a withdrawal already made: do not take it twice
            self.duplicates_ignored += 1
            return self.account.balance
        balance = self._apply(txn, raise_errors=True)
        await workflow.execute_activity(post_to_ledger, args=[txn, self.start.post_seconds],
                                        start_to_close_timeout=timedelta(seconds=60))
        return balance

    @withdraw.validator
    def _validate_withdraw(self, txn: Transaction) -> None:
        """Reject (nothing enters the history) a withdrawal the rules refuse; a retry is always accepted."""
        if txn.operation != "withdraw":
            raise AccountError(f"the withdraw update takes withdrawals, not {txn.operation!r}")
        if txn.request_id not in self.applied_ids:
            check_transaction(self.account, txn)

    @workflow.signal
    def set_max_events(self, max_events: int) -> None:
        """Change the demo threshold; it travels in the handover, so it holds for later runs too."""
        self.max_events = max_events

    @workflow.signal
    def roll_over(self) -> None:
        """Continue-as-new at the next opportunity, whatever the history length (for demos and tests)."""
        self.roll_over_requested = True

    @workflow.signal
    def close_account(self) -> None:
        """Apply what is left, close the account and end the workflow (its result is the final account)."""
        self.closing = True

    @workflow.query
    def status(self) -> EntityStatus:
        info = workflow.info()
        return EntityStatus(
            run_number=self.start.run_number, run_id=info.run_id,
            first_execution_run_id=info.first_execution_run_id, continued_run_id=info.continued_run_id,
            history_length=info.get_current_history_length(), history_size=info.get_current_history_size(),
            continue_as_new_suggested=info.is_continue_as_new_suggested(), max_events=self.max_events,
            balance=self.account.balance, transactions=self.account.transactions, queued=len(self.inbox),
            carried_in=len(self.start.pending), processed_this_run=self.processed_this_run,
            duplicates_ignored=self.duplicates_ignored, rejected=len(self.rejected),
        )

    @workflow.query
    def ledger(self) -> list[str]:
        """The request ids applied so far, oldest first (the account remembers `keep_ids` of them)."""
        return list(self.account.applied)

    # -- the main loop's helpers ------------------------------------------------------------------------

    def should_continue_as_new(self) -> bool:
        info = workflow.info()
        too_long = self.max_events > 0 and info.get_current_history_length() >= self.max_events
        return self.roll_over_requested or too_long or info.is_continue_as_new_suggested()

    def something_to_do(self) -> bool:
        return bool(self.inbox) or self.closing or self.should_continue_as_new()

    def process_inbox(self) -> None:
        """Apply every buffered deposit, in arrival order."""
        while self.inbox:
            self._apply(self.inbox.pop(0))

    def take_inbox(self) -> list[Transaction]:
        """Empty the inbox and return what was in it (to hand it over, unprocessed)."""
        taken, self.inbox = self.inbox, []
        return taken

    def handover(self, pending: list[Transaction] | None = None) -> Handover:
        """The next run's input: the account, and the transactions it must still apply."""
        return Handover(
            account=self.account, pending=list(pending or []), max_events=self.max_events,
            run_number=self.start.run_number + 1, keep_ids=self.start.keep_ids,
            post_seconds=self.start.post_seconds, duplicates_ignored=self.duplicates_ignored,
            rejected=self.rejected,
        )

    def finish(self) -> Account:
        self.process_inbox()
        self.account = close(self.account)
        return self.account

    def _apply(self, txn: Transaction, *, raise_errors: bool = False) -> int:
        """Apply one transaction exactly once (a known request id is a retry); returns the balance after it."""
        if txn.request_id and txn.request_id in self.applied_ids:
            self.duplicates_ignored += 1
            return self.account.balance
        try:
            self.account = apply(self.account, txn, keep_ids=self.start.keep_ids)
        except AccountError as err:
            if raise_errors:  # an update: the caller gets the business error, the workflow goes on
                raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from None
            self.rejected.append(f"{txn.request_id}: {err}")  # a signal cannot answer, so we keep a record
            return self.account.balance
        if txn.request_id:
            self.applied_ids.add(txn.request_id)
            if len(self.applied_ids) > 2 * self.start.keep_ids:  # keep the set as short as the account's window
                self.applied_ids = set(self.account.applied)
        self.processed_this_run += 1
        return self.account.balance


@workflow.defn
class LeakyAccount(_AccountEntity):
    """The wrong way: continues-as-new with the account only, and without waiting for running handlers."""

    @workflow.run
    async def run(self, start: Handover) -> Account:
        while True:
            await workflow.wait_condition(self.something_to_do)
            if self.closing:
                return self.finish()
            if self.should_continue_as_new():
                # BUG: the deposits in self.inbox are not in the handover, and a withdrawal still posting to
                # the ledger is cut off. The SDK warns about the second; nothing warns about the first.
                workflow.continue_as_new(self.handover())
            self.process_inbox()


@workflow.defn
class SafeAccount(_AccountEntity):
    """The right way: let running handlers finish, then hand the unprocessed inbox to the next run."""

    @workflow.run
    async def run(self, start: Handover) -> Account:
        while True:
            await workflow.wait_condition(self.something_to_do)
            if self.closing or self.should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self.closing:  # it may have arrived while we waited
                    return self.finish()
                # Deposits that arrived while we waited are in the inbox too: all of it goes to the next run.
                workflow.continue_as_new(self.handover(pending=self.take_inbox()))
            self.process_inbox()


@workflow.defn
class HistoryGrower:
    """A throwaway workflow that grows its own history fast, to find where the server starts suggesting
    continue-as-new. Each step upserts its memo `k` times (one event each) and runs one quick activity, which
    ends the workflow task so the next step sees the new length. Returns (history length, suggested) per step.
    """

    @workflow.run
    async def run(self, near: int, step: int, stop_after: int) -> list[tuple[int, bool]]:
        seen: list[tuple[int, bool]] = []
        upserts = 0
        while True:
            info = workflow.info()
            length, suggested = info.get_current_history_length(), info.is_continue_as_new_suggested()
            seen.append((length, suggested))
            if suggested or length >= stop_after:
                return seen
            k = min(1000, max(step, near - length - 60))  # big steps until close to `near`, then small ones
            for _ in range(k):
                upserts += 1
                workflow.upsert_memo({"upserts": upserts})
            await workflow.execute_activity(post_to_ledger, args=[Transaction("deposit", 1, "grow"), 0.0],
                                            start_to_close_timeout=timedelta(seconds=30))


WORKFLOWS = [LeakyAccount, SafeAccount, HistoryGrower]
ACTIVITIES = [post_to_ledger]


# ---------------------------------------------------------------------------------------------------------
# Client side: a burst, an audit by request id, and the chain of runs
# ---------------------------------------------------------------------------------------------------------


def new_account(account_id: str, opening_balance: int = 0, **handover: Any) -> Handover:
    """The first run's input: an account with an opening balance (the opening deposit has no request id)."""
    return Handover(account=Account(account_id=account_id, balance=opening_balance), **handover)


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
            carried_out = len(_decode_handover(client, last.workflow_execution_continued_as_new_event_attributes.input).pending)
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


def chain_frame(runs: list[RunInfo]):
    """The chain as a DataFrame (run ids cut to 8 characters, for reading)."""
    import pandas as pd

    frame = pd.DataFrame([r.__dict__ for r in runs])
    for column in ("run_id", "first_execution_run_id", "continued_from"):
        frame[column] = frame[column].str[:8]
    return frame


def chain_chart(runs: list[RunInfo], max_events: int, title: str = "The chain of runs"):
    """Events per run (bars) against the demo threshold; transactions carried to the next run marked on top."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.4))
    numbers = [r.run_number for r in runs]
    ax.bar(numbers, [r.events for r in runs], color="#1f77b4", label="events in the run")
    ax.axhline(max_events, color="#d62728", linestyle="--", label=f"demo threshold ({max_events} events)")
    for r in runs:
        if r.carried_out:
            ax.annotate(f"{r.carried_out} carried →", (r.run_number, r.events), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=8, color="#ff7f0e")
    ax.set_xticks(numbers, [f"run {r.run_number}\n{r.run_id[:8]}" for r in runs], fontsize=7)
    ax.set_ylabel("events")
    ax.set_ylim(top=max([max_events] + [r.events for r in runs]) * 1.18)
    ax.set_title(f"{title} (one workflow id; the real limit is {EVENTS_LIMIT:,} events per run)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def limits_table(max_events: int) -> list[dict[str, str]]:
    """The demo threshold beside the server's real numbers."""
    return [
        {"what": "demo threshold (this notebook)", "events": f"{max_events:,}", "size": "-"},
        {"what": "server suggests continue-as-new", "events": f"{SUGGEST_EVENTS:,}", "size": "4 MB"},
        {"what": "server starts warning", "events": f"{EVENTS_WARNING:,}", "size": "10 MB"},
        {"what": "server terminates the run", "events": f"{EVENTS_LIMIT:,}", "size": "50 MB"},
    ]


async def wait_until_idle(handle, timeout: float = 30.0) -> EntityStatus:
    """Query until the latest run has nothing queued and no workflow task pending (a query may lag a signal).

    The server's view is read before and after the query: both must show the same run, the same history
    length and no task waiting, or the answer may describe a moment that has already passed. Still busy after
    `timeout` seconds: raises `WorkbookError`, never returns a status that is not idle.
    """
    deadline = time.monotonic() + timeout
    while True:
        before = await handle.describe()
        status = await handle.query("status", result_type=EntityStatus)
        after = await handle.describe()
        steady = (before.run_id == after.run_id == status.run_id and before.history_length == after.history_length
                  and not after.raw_description.HasField("pending_workflow_task"))
        if steady and status.queued == 0:
            return status
        if time.monotonic() > deadline:
            from .server import WorkbookError  # here, not at the top: the workflow sandbox re-imports this module

            waiting = "a workflow task is still waiting" if not steady else f"{status.queued} deposits still queued"
            raise WorkbookError(f"{handle.id} was not idle after {timeout:g} s ({waiting}, run {status.run_number}): "
                                "is its worker running and keeping up?")
        await asyncio.sleep(0.05)


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


def growth_chart(samples: list[dict[str, Any]]):
    """History length and size against deposits sent."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    sent = [s["deposits sent"] for s in samples]
    ax.plot(sent, [s["history length"] for s in samples], marker="o", color="#1f77b4", label="events")
    ax.set_xlabel("deposits sent (signals)")
    ax.set_ylabel("events in the history", color="#1f77b4")
    size = ax.twinx()
    size.plot(sent, [s["history bytes"] / 1024 for s in samples], marker="s", color="#ff7f0e", label="size")
    size.set_ylabel("history size (KiB)", color="#ff7f0e")
    ax.set_title(f"Every message adds events and bytes (limits: {EVENTS_LIMIT:,} events, 50 MB)")
    fig.tight_layout()
    return fig


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
    from .workshop import unique

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
    from temporalio.client import WorkflowUpdateStage

    from .workshop import unique

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
    from .workshop import unique

    workflow_id = unique("nb05-exercise")
    handle = await client.start_workflow(LeakyAccount.run, new_account(workflow_id[-40:], 100, post_seconds=1.5),
                                         id=workflow_id, task_queue=task_queue)
    txn = Transaction("withdraw", 10, f"{workflow_id}-atm")
    task = asyncio.ensure_future(withdraw_safely(handle, txn))
    deadline = time.monotonic() + 20
    while (await handle.query("status", result_type=EntityStatus)).balance != 90:  # accepted, posting
        if task.done() or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
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
            "SDK warnings": sum(issubclass(w.category, workflow.UnfinishedUpdateHandlersWarning) for w in caught)}
