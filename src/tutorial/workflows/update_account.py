"""Workflows for notebook 03: the bank account as an entity workflow changed by **updates**.

`UpdateAccount` holds one account (the rules are in `domain.py`). Clients change it with updates, which return
a result to the caller (C14):

- `deposit` / `withdraw`: synchronous handlers, each guarded by a **validator**. A validator runs before the
  update is accepted; if it raises, the update is *rejected* and leaves no trace in the history.
- `transfer`: an **async** handler that calls an activity (the outside payment network) while holding an
  `asyncio.Lock`. `transfer_unlocked` is the same code without the lock: concurrent transfers overwrite each
  other's balance (the notebook's concurrency lesson).
- `close`: closes the account; the workflow then finishes once every running handler has finished.

Three more workflows serve the notebook's experiments:

- `FeeAccount` (issue item 4): an update handler *without* a validator that fails after acceptance, two ways.
  A fee larger than the balance raises an `ApplicationError`: that update fails, the workflow goes on. An
  unknown fee kind hits a bug (a `KeyError`): any exception that is not a Temporal failure fails the
  *workflow task*; the worker retries it, and the caller waits. `FixedFeeAccount` is the same workflow type
  with the bug fixed (an `ApplicationError` for an unknown kind): the deploy that unsticks it.
- `BusyEntity` (C13): a workflow whose code is slow: every workflow task that brings it work (a `more`
  signal) holds a worker slot for `task_s` seconds (a stand-in for heavy work in workflow code), so that
  the account's updates wait for the worker.

For the side-by-side comparison the entity also takes a `deposit_signal` (a signal cannot return anything,
so the client queries `account_state` until the change is visible), and `DepositRequest` is the same deposit
as one short workflow per request, with the account kept in a stand-in "database" by an activity.

Activities here talk to two in-process stand-ins for the outside world (`payment_network`, `database`), so
the notebook can look at what reached them. Everything else is real Temporal. The client side (update-with-
start, the form, the measurements) is `tutorial.entity_updates`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from . import domain
from .domain import Account, AccountError, Transaction
from .failures import business_failure, passed_on


@dataclass(frozen=True)
class Transfer:
    """Money leaving the account through the payment network. The validator can check the amount and the
    balance; only the network knows whether the payee exists."""

    to: str
    amount: int
    request_id: str = ""


# ---------------------------------------------------------------- the outside world (in-process stand-ins)


@dataclass
class PaymentNetwork:
    """A slow external service: it takes `delay_s` per transfer and refuses payees it does not know."""

    delay_s: float = 0.2
    payees: set[str] = field(default_factory=lambda: {"landlord", "grocer", "utility", "savings"})
    sent: list[tuple[str, str, int, str]] = field(default_factory=list)  # (account, to, amount, request id)

    def sent_from(self, account_id: str) -> list[tuple[str, str, int, str]]:
        return [s for s in self.sent if s[0] == account_id]


payment_network = PaymentNetwork()
database: dict[str, Account] = {}  # workflow-per-request keeps the account here ("send, update the db, reply")


@activity.defn
async def send_transfer(account_id: str, transfer: Transfer) -> str:
    """Ask the payment network to pay `transfer.to`. Slow; fails (not retryably) for an unknown payee."""
    await asyncio.sleep(payment_network.delay_s)
    if transfer.to not in payment_network.payees:
        raise ApplicationError(f"the payment network does not know a payee called {transfer.to!r}",
                               type="UnknownPayee", non_retryable=True)
    payment_network.sent.append((account_id, transfer.to, transfer.amount, transfer.request_id))
    return f"sent {transfer.amount} to {transfer.to}"


@activity.defn
async def apply_in_database(account_id: str, txn: Transaction) -> int:
    """Workflow-per-request's activity: read the account row, apply the rule, write it back, return the balance."""
    account = database.get(account_id) or Account(account_id)
    try:
        database[account_id] = domain.apply(account, txn)
    except AccountError as err:
        raise business_failure(err) from None
    return database[account_id].balance


# ---------------------------------------------------------------- the entity


@workflow.defn
class UpdateAccount:
    """One bank account for as long as it stays open; changed by updates, read by a query."""

    @workflow.init
    def __init__(self, account_id: str) -> None:
        # @workflow.init: the state exists before any handler runs, even for update-with-start, whose update
        # arrives in the very first workflow task.
        self.account = Account(account_id)
        self.lock = asyncio.Lock()
        self.ignored_signals: list[str] = []

    @workflow.run
    async def run(self, account_id: str) -> Account:
        await workflow.wait_condition(lambda: not self.account.open and workflow.all_handlers_finished())
        return self.account

    # -- synchronous updates, with validators ---------------------------------------------------------

    @workflow.update
    def deposit(self, amount: int) -> int:
        """Add money; returns the new balance."""
        self.account = domain.apply(self.account, Transaction("deposit", amount))
        return self.account.balance

    @deposit.validator
    def check_deposit(self, amount: int) -> None:
        domain.check_transaction(self.account, Transaction("deposit", amount))

    @workflow.update
    def withdraw(self, amount: int) -> int:
        """Take money out; returns the new balance."""
        self.account = domain.apply(self.account, Transaction("withdraw", amount))
        return self.account.balance

    @withdraw.validator
    def check_withdraw(self, amount: int) -> None:
        domain.check_transaction(self.account, Transaction("withdraw", amount))

    # -- an async update that calls an activity ---------------------------------------------------------

    def _check_transfer(self, transfer: Transfer) -> None:
        if not transfer.to.strip():
            raise AccountError("a transfer needs a payee")
        domain.check_transaction(self.account, Transaction("withdraw", transfer.amount, transfer.request_id))

    async def _pay_and_debit(self, transfer: Transfer) -> int:
        # An update handler must raise a Temporal failure to fail the *update*; any other exception after
        # acceptance would fail the workflow task instead (and be retried until the code is fixed).
        txn = Transaction("withdraw", transfer.amount, transfer.request_id)
        try:
            after = domain.apply(self.account, txn)  # compute the new state (checks the funds again)
        except AccountError as err:
            raise business_failure(err) from None
        try:
            await workflow.execute_activity(
                send_transfer, args=[self.account.account_id, transfer],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:  # the network said no: fail this update, keep the money
            failure = passed_on(err)
            if failure is err:  # no business failure of the network's own (a timeout, a crash): say so
                raise ApplicationError(f"payment failed: {err.cause}", type="PaymentFailed",
                                       non_retryable=True) from None
            raise failure from None
        self.account = after  # save: paid, so debit
        return self.account.balance

    @workflow.update
    async def transfer(self, transfer: Transfer) -> int:
        """Pay someone through the payment network, one transfer at a time; returns the new balance."""
        async with self.lock:
            return await self._pay_and_debit(transfer)

    @transfer.validator
    def check_transfer(self, transfer: Transfer) -> None:
        self._check_transfer(transfer)

    @workflow.update
    async def transfer_unlocked(self, transfer: Transfer) -> int:
        """The same code without the lock. While one transfer awaits the network, another runs, computes its
        new balance from the same old state, and the last one to finish overwrites the others."""
        return await self._pay_and_debit(transfer)

    @transfer_unlocked.validator
    def check_transfer_unlocked(self, transfer: Transfer) -> None:
        self._check_transfer(transfer)

    @workflow.update
    def close(self) -> Account:
        """Close the account; the workflow returns once every handler still running has finished."""
        self.account = domain.close(self.account)
        return self.account

    # -- the signal + query way, for comparison ---------------------------------------------------------

    @workflow.signal
    def deposit_signal(self, txn: Transaction) -> None:
        """A signal has no validator and returns nothing: a bad one is already in the history, so the handler
        can only ignore it (and write down why)."""
        try:
            self.account = domain.apply(self.account, txn)
        except AccountError as err:
            self.ignored_signals.append(str(err))

    @workflow.query
    def account_state(self) -> Account:
        return self.account

    @workflow.query
    def ignored(self) -> list[str]:
        return list(self.ignored_signals)


@workflow.defn
class DepositRequest:
    """Workflow-per-request: one short workflow per deposit; the account lives in the database."""

    @workflow.run
    async def run(self, account_id: str, txn: Transaction) -> int:
        return await workflow.execute_activity(apply_in_database, args=[account_id, txn],
                                               start_to_close_timeout=timedelta(seconds=30))


# ---------------------------------------------------------------- a handler that fails after acceptance (item 4)


FEES = {"wire": 15, "overdraft": 30, "card": 5}


@workflow.defn(name="FeeAccount")
class FeeAccount:
    """An account whose `charge_fee` update has no validator, so everything it raises comes after acceptance."""

    @workflow.init
    def __init__(self, account_id: str) -> None:
        self.account = Account(account_id)

    @workflow.run
    async def run(self, account_id: str) -> Account:
        await workflow.wait_condition(lambda: not self.account.open and workflow.all_handlers_finished())
        return self.account

    @workflow.update
    def deposit(self, amount: int) -> int:
        self.account = domain.apply(self.account, Transaction("deposit", amount))
        return self.account.balance

    def fee(self, kind: str) -> int:
        return FEES[kind]  # the bug: an unknown kind raises KeyError, which is no Temporal failure

    @workflow.update
    def charge_fee(self, kind: str) -> int:
        """Charge a fee of `kind`; returns the new balance."""
        try:
            self.account = domain.apply(self.account, Transaction("withdraw", self.fee(kind)))
        except AccountError as err:  # a fee larger than the balance: fail this update, keep the workflow
            raise business_failure(err) from None
        return self.account.balance

    @workflow.update
    def close(self) -> Account:
        self.account = domain.close(self.account)
        return self.account

    @workflow.query
    def account_state(self) -> Account:
        return self.account


@workflow.defn(name="FeeAccount")
class FixedFeeAccount(FeeAccount):
    """The same workflow type, the bug fixed: an unknown fee kind fails the update, not the workflow task."""

    @workflow.run
    async def run(self, account_id: str) -> Account:
        return await super().run(account_id)

    def fee(self, kind: str) -> int:
        if kind not in FEES:
            raise ApplicationError(f"no fee called {kind!r} (known: {', '.join(FEES)})", type="UnknownFee",
                                   non_retryable=True)
        return FEES[kind]


# ---------------------------------------------------------------- a workflow that keeps the worker busy (C13)


@workflow.defn
class BusyEntity:
    """Slow workflow code: each workflow task that brings it work (`more` signals) blocks its worker slot for
    `task_s` seconds, however many signals it brings, until the `stop` signal."""

    def __init__(self) -> None:
        self.stopped = False
        self.asked = 0  # `more` signals received
        self.done = 0  # signals whose work is done

    @workflow.run
    async def run(self, task_s: float) -> int:
        tasks = 0
        while True:
            await workflow.wait_condition(lambda: self.stopped or self.asked > self.done)
            if self.stopped:
                return tasks
            if not workflow.unsafe.is_replaying():
                with workflow.unsafe.sandbox_unrestricted():
                    time.sleep(task_s)  # never block in workflow code for real: here it stands for heavy work
            self.done = self.asked
            tasks += 1

    @workflow.signal
    def more(self) -> None:
        self.asked += 1

    @workflow.signal
    def stop(self) -> None:
        self.stopped = True


WORKFLOWS = [UpdateAccount, DepositRequest]
EXPERIMENT_WORKFLOWS = [FeeAccount, BusyEntity]  # FixedFeeAccount replaces FeeAccount on a "deployed" worker
ACTIVITIES = [send_transfer, apply_in_database]
