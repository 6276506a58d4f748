"""Workflows the benchmark (`tutorial.bench`, notebook 07) measures.

The same shapes as notebooks 01-03, kept minimal so the benchmark measures Temporal, not the lesson code:

- `DepositOnce`: workflow-per-request (01). One short workflow per deposit; an activity applies it to the
  account kept in a "database" (an in-process dict standing in for a real one) and replies with the balance.
- `BenchAccount`: the entity (02, 03). One long-lived workflow per account, changed by a `deposit_signal`
  (returns nothing) or a `deposit` update (returns the new balance, guarded by a validator), read by the
  `state` query, closed by the `close` signal.

The rules are `domain`'s, as everywhere in the workbook. `handler_ms` makes every handler take that long,
as a slow library call would: the benchmark uses it to load a worker on purpose (C13). It is a simulation:
the handler sleeps outside the sandbox, which changes no state, so replay stays deterministic.
"""

from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from . import domain
    from .domain import Account, Transaction

# workflow-per-request keeps the account here: "send the request, update the db, reply"
DATABASE: dict[str, Account] = {}


@activity.defn
async def deposit_in_database(account_id: str, amount: int) -> int:
    """Apply a deposit to the account in the database; returns the new balance."""
    account = DATABASE.get(account_id) or Account(account_id)
    DATABASE[account_id] = account = domain.apply(account, Transaction("deposit", amount))
    return account.balance


@workflow.defn
class DepositOnce:
    """Workflow-per-request: start, update the database through an activity, reply, finish."""

    @workflow.run
    async def run(self, account_id: str, amount: int) -> int:
        return await workflow.execute_activity(deposit_in_database, args=[account_id, amount],
                                               start_to_close_timeout=timedelta(seconds=30))


def _slow(ms: float) -> None:
    """Make a handler take `ms` milliseconds, as a slow synchronous call would (a load generator, not a
    pattern: real workflow code must not block). It blocks this workflow task's thread, not the event loop."""
    if ms > 0:
        with workflow.unsafe.sandbox_unrestricted():
            time.sleep(ms / 1000)


@workflow.defn
class BenchAccount:
    """An account entity: signal or update to deposit, query to read, `close` to finish."""

    @workflow.init
    def __init__(self, account_id: str, handler_ms: float = 0.0) -> None:
        # @workflow.init: state exists before the first handler runs (update-with-start delivers the update
        # in the very first workflow task).
        self.account = Account(account_id)
        self.handler_ms = handler_ms
        self.closed = False

    @workflow.run
    async def run(self, account_id: str, handler_ms: float = 0.0) -> int:
        await workflow.wait_condition(lambda: self.closed and workflow.all_handlers_finished())
        return self.account.balance

    @workflow.signal
    def deposit_signal(self, amount: int) -> None:
        """Deposit; returns nothing. A bad amount is already in the history, so it can only be ignored."""
        _slow(self.handler_ms)
        try:
            self.account = domain.apply(self.account, Transaction("deposit", amount))
        except domain.AccountError:
            pass

    @workflow.update
    def deposit(self, amount: int) -> int:
        """Deposit; returns the new balance."""
        _slow(self.handler_ms)
        self.account = domain.apply(self.account, Transaction("deposit", amount))
        return self.account.balance

    @deposit.validator
    def check_deposit(self, amount: int) -> None:
        domain.check_transaction(self.account, Transaction("deposit", amount))

    @workflow.query
    def state(self) -> Account:
        return self.account

    @workflow.signal
    def close(self) -> None:
        self.closed = True


WORKFLOWS = [DepositOnce, BenchAccount]
ACTIVITIES = [deposit_in_database]
