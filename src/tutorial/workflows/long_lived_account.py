"""Notebook 05's long-lived account: continue-as-new with pending signals and updates, losing nothing.

An entity workflow (the bank account of `domain.py`) lives for ever, but its event history may not (the server's
limits are in `tutorial.limits`). Continue-as-new closes the run and starts a fresh one, with the same workflow
id, whose input is whatever the old run hands over. The hard part is the work still in flight at that moment:

* signals already delivered to the run but still waiting in the workflow's own buffer (`inbox`);
* update handlers still running (here: a withdrawal waiting for its ledger posting).

Two entities share every handler (`AccountEntity`) and differ only in how they continue-as-new:

* `LeakyAccount` hands over the account and nothing else, and does not wait for its handlers: under a burst it
  silently drops the buffered deposits, and a withdrawal in flight fails at its caller although the money moved.
* `SafeAccount` waits for `workflow.all_handlers_finished()`, then drains the inbox into the next run's input.

Every transaction carries a `request_id`, so the entity can recognise a retry, and a test can prove that each
transaction sent was applied exactly once. `HistoryGrower` is a throwaway that finds where the server starts
suggesting continue-as-new. The client side (bursts, audits, the chain of runs) is `tutorial.continue_as_new`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow

from .domain import Account, AccountError, Transaction, apply, check_transaction, close
from .failures import business_failure

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


class AccountEntity:
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

    @workflow.update
    def deposit_now(self, txn: Transaction) -> int:
        """A teller's deposit: applied at once (no activity), the caller waits for the balance after it."""
        return self._apply(txn, raise_errors=True)

    @deposit_now.validator
    def _validate_deposit_now(self, txn: Transaction) -> None:
        if txn.operation != "deposit":
            raise AccountError(f"the deposit_now update takes deposits, not {txn.operation!r}")
        if txn.request_id not in self.applied_ids:
            check_transaction(self.account, txn)

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
                raise business_failure(err) from None
            self.rejected.append(f"{txn.request_id}: {err}")  # a signal cannot answer, so we keep a record
            return self.account.balance
        if txn.request_id:
            self.applied_ids.add(txn.request_id)
            if len(self.applied_ids) > 2 * self.start.keep_ids:  # keep the set as short as the account's window
                self.applied_ids = set(self.account.applied)
        self.processed_this_run += 1
        return self.account.balance


@workflow.defn
class LeakyAccount(AccountEntity):
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
class SafeAccount(AccountEntity):
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
class ThresholdOnlyAccount(SafeAccount):
    """SafeAccount with one change: it continues-as-new on its own rule only (`max_events`, or `roll_over`) and
    ignores the server's `is_continue_as_new_suggested()`. A common rule ("every 10,000 events") that forgets
    the limits that are not about events: the server refuses the update past `history.maxTotalUpdates`."""

    @workflow.run
    async def run(self, start: Handover) -> Account:
        return await SafeAccount.run(self, start)  # the same loop; only `should_continue_as_new` differs

    def should_continue_as_new(self) -> bool:
        info = workflow.info()
        too_long = self.max_events > 0 and info.get_current_history_length() >= self.max_events
        return self.roll_over_requested or too_long


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


WORKFLOWS = [LeakyAccount, SafeAccount, ThresholdOnlyAccount, HistoryGrower]
ACTIVITIES = [post_to_ledger]
