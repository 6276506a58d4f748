"""Notebook 04's workflow: a bank-account ledger that says, from inside, when the worker is replaying it.

`Ledger` is a small bank-account entity workflow (it mirrors notebook 02's signal-based entity, built here on
`domain` so notebook 04 stands on its own): `deposit` / `withdraw` / `close` signals change it, the `state`
query reads it. Every handler writes a line to the replay-safe `workflow.logger` (silent while replaying) and,
*only while replaying*, a line to a plain Python logger (the trace): together they show when the worker is
re-running old history to rebuild state it lost.

`LedgerV2` and `LedgerV3` are later versions of the same workflow type (same name on purpose, "ReplayLedger"):
V2 adds a grace-period timer incompatibly, V3 adds it behind `workflow.patched`. Only one version is ever
registered on a worker; the `Replayer` (`tutorial.replay.replay_history`) replays a history against each.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio import workflow

from . import domain
from .domain import Account, Transaction

WORKFLOW_NAME = "ReplayLedger"
TRACE_LOGGER = "tutorial.replay.trace"  # a plain logger: it logs whenever the code runs (we guard it)
WORKFLOW_LOGGER = "temporalio.workflow"  # the SDK's replay-safe `workflow.logger` writes here
GRACE_PERIOD = timedelta(milliseconds=100)

_trace = logging.getLogger(TRACE_LOGGER)


class _LedgerBase:
    """What every version shares: the account, the signals, the query, and the two kinds of log line."""

    @workflow.init
    def __init__(self, account_id: str) -> None:
        # @workflow.init: the state exists before any signal is handled, even a signal that arrived with the start
        self.account = Account(account_id=account_id)
        self.rejected: list[str] = []
        self.closing = False

    def _note(self, text: str) -> None:
        """Log `text` replay-safely, and trace it if this code is running again during a replay."""
        workflow.logger.info(text)  # replay-safe: skipped while the worker replays history
        if workflow.unsafe.is_replaying():
            info = workflow.info()
            _trace.info(f"replaying: {text}", extra={
                "workflow_id": info.workflow_id, "history_length": info.get_current_history_length(),
            })

    def _apply(self, operation: str, amount: int) -> None:
        try:
            self.account = domain.apply(self.account, Transaction(operation, amount))
            self._note(f"{operation} {amount}: balance {self.account.balance}")
        except domain.AccountError as err:  # a signal cannot answer, so a refusal is recorded in the state
            self.rejected.append(str(err))
            self._note(f"{operation} {amount} refused: {err}")

    @workflow.signal
    def deposit(self, amount: int) -> None:
        self._apply("deposit", amount)

    @workflow.signal
    def withdraw(self, amount: int) -> None:
        self._apply("withdraw", amount)

    @workflow.signal
    def close(self) -> None:
        self.closing = True

    @workflow.query
    def state(self) -> Account:
        return self.account

    @workflow.query
    def refusals(self) -> list[str]:
        return list(self.rejected)


@workflow.defn(name=WORKFLOW_NAME)
class Ledger(_LedgerBase):
    """Version 1: open the account, apply signals until `close`, return the final account."""

    @workflow.run
    async def run(self, account_id: str) -> Account:
        self._note(f"account {account_id} opened")
        await workflow.wait_condition(lambda: self.closing)
        self.account = domain.close(self.account)
        self._note(f"account closed with balance {self.account.balance}")
        return self.account


@workflow.defn(name=WORKFLOW_NAME)
class LedgerV2(_LedgerBase):
    """Version 2, INCOMPATIBLE: a grace period (a timer) before closing. Old histories have no such timer."""

    @workflow.run
    async def run(self, account_id: str) -> Account:
        self._note(f"account {account_id} opened")
        await workflow.wait_condition(lambda: self.closing)
        await workflow.sleep(GRACE_PERIOD)  # new command: replaying a version-1 history fails here
        self.account = domain.close(self.account)
        self._note(f"account closed with balance {self.account.balance}")
        return self.account


@workflow.defn(name=WORKFLOW_NAME)
class LedgerV3(_LedgerBase):
    """Version 3, compatible: the same grace period, but only for workflows that reach it running this code."""

    @workflow.run
    async def run(self, account_id: str) -> Account:
        self._note(f"account {account_id} opened")
        await workflow.wait_condition(lambda: self.closing)
        if workflow.patched("grace-period"):  # False while replaying a history recorded without the patch
            await workflow.sleep(GRACE_PERIOD)
        self.account = domain.close(self.account)
        self._note(f"account closed with balance {self.account.balance}")
        return self.account
