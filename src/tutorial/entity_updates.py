"""Workflows for notebook 03: the bank account as an entity workflow changed by **updates**.

`AccountEntity` holds one account (the rules are in `domain.py`). Clients change it with updates, which return
a result to the caller (C14):

- `deposit` / `withdraw`: synchronous handlers, each guarded by a **validator**. A validator runs before the
  update is accepted; if it raises, the update is *rejected* and leaves no trace in the history.
- `transfer`: an **async** handler that calls an activity (the outside payment network) while holding an
  `asyncio.Lock`. `transfer_unlocked` is the same code without the lock: concurrent transfers overwrite each
  other's balance (the notebook's concurrency lesson).
- `close`: closes the account; the workflow then finishes once every running handler has finished.

For the side-by-side comparison the entity also takes a `deposit_signal` (a signal cannot return anything,
so the client queries `account` until the change is visible), and `DepositRequest` is the same deposit as
one short workflow per request, with the account kept in a stand-in "database" by an activity.

Activities here talk to two in-process stand-ins for the outside world (`payment_network`, `database`), so
the notebook can look at what reached them. Everything else is real Temporal.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RetryPolicy, WorkflowIDConflictPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from . import errors
    from .workflows import domain
    from .workflows.domain import Account, AccountError, Transaction
    from .server import WorkbookError
    from .workshop import scoped

TASK_QUEUE = "nb03-accounts"  # scoped by WorkerController


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
        raise ApplicationError(str(err), type=type(err).__name__, non_retryable=True) from None
    return database[account_id].balance


# ---------------------------------------------------------------- the entity


def _business_error(err: AccountError) -> ApplicationError:
    """An update handler must raise a Temporal failure to fail the *update*; any other exception after
    acceptance would fail the workflow task instead (and be retried until the code is fixed)."""
    return ApplicationError(str(err), type=type(err).__name__, non_retryable=True)


@workflow.defn
class AccountEntity:
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
        txn = Transaction("withdraw", transfer.amount, transfer.request_id)
        try:
            after = domain.apply(self.account, txn)  # compute the new state (checks the funds again)
        except AccountError as err:
            raise _business_error(err) from None
        try:
            await workflow.execute_activity(
                send_transfer, args=[self.account.account_id, transfer],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:  # the network said no: fail this update, keep the money
            cause = err.cause
            if isinstance(cause, ApplicationError):
                raise ApplicationError(cause.message, type=cause.type, non_retryable=True) from None
            raise ApplicationError(f"payment failed: {cause}", type="PaymentFailed", non_retryable=True) from None
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


WORKFLOWS = [AccountEntity, DepositRequest]
ACTIVITIES = [send_transfer, apply_in_database]


# ---------------------------------------------------------------- client side


def workflow_id(account_id: str) -> str:
    """The entity's workflow id: one account, one workflow id (scoped to the learner)."""
    return scoped(f"nb03-account-{account_id}")


def open_account_operation(account_id: str, task_queue: str) -> WithStartWorkflowOperation:
    """Start the account's workflow if it is not running; use the running one if it is."""
    return WithStartWorkflowOperation(
        AccountEntity.run, account_id, id=workflow_id(account_id), task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def deposit_with_start(client: Client, account_id: str, amount: int, task_queue: str
                             ) -> tuple[int, WorkflowHandle]:
    """Update-with-start: deposit into the account, creating its workflow lazily on the first deposit.
    Returns the new balance and the workflow handle."""
    start = open_account_operation(account_id, task_queue)
    balance = await client.execute_update_with_start_workflow(AccountEntity.deposit, amount,
                                                              start_workflow_operation=start)
    return balance, await start.workflow_handle()


async def signal_then_query(handle: WorkflowHandle, txn: Transaction, *, pause_s: float = 0.0,
                            max_queries: int = 10_000) -> tuple[Account, int]:
    """The signal + query round trip: signal a deposit, then query until it is visible.
    Returns the account that shows it and how many queries it took."""
    await handle.signal(AccountEntity.deposit_signal, txn)
    for queries in range(1, max_queries + 1):
        account = await handle.query(AccountEntity.account_state)
        if txn.request_id in account.applied:
            return account, queries
        if pause_s:
            await asyncio.sleep(pause_s)
    raise TimeoutError(f"the signal {txn.request_id} was not visible after {max_queries} queries")


def reset_outside_world(delay_s: float = 0.2) -> None:
    """Forget what the stand-ins recorded (the notebook calls it so a re-run starts clean)."""
    payment_network.delay_s = delay_s
    payment_network.sent.clear()
    database.clear()


def explain(err: BaseException) -> str:
    """`errors.explain`, plus the innermost message of a failed update (what the validator or handler said).

    `WorkflowUpdateFailedError` carries the workflow's failure as `.cause`; for either kind of failure the
    caller gets this same exception type: the history tells a rejection from a failure after acceptance."""
    if isinstance(err, WorkflowUpdateFailedError):
        return f"Update rejected or failed: {errors.explain(err.cause)}"
    return errors.explain(err)


# ---------------------------------------------------------------- the form


UPDATES = {"deposit": AccountEntity.deposit, "withdraw": AccountEntity.withdraw}


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


async def submit(handle: WorkflowHandle, operation: str, amount: int) -> int:
    """Run the form's update and return the new balance; a rejection becomes one readable sentence."""
    try:
        return await handle.execute_update(UPDATES[operation], amount)
    except WorkflowUpdateFailedError as err:
        raise WorkbookError(explain(err)) from err
