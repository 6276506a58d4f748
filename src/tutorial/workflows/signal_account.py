"""Workflows for notebook 02: the bank account as a long-running *entity workflow*, changed by signals and read
by queries.

One workflow execution **is** one account, for as long as the account is open. Its id is the account id, its
state lives in the workflow object (kept by the worker's cache, rebuilt from the history after an eviction), and
the server's event history is the only storage: there is no database beside it. The rules are the shared ones in
`domain.py`, so notebooks 01-05 agree on what an account may do.

How clients talk to `SignalAccount`
- **Signals** `deposit`, `withdraw`, `close` change it. A signal is fire-and-forget: the server persists it and
  returns nothing to the caller, not even whether the account accepted it.
- **Queries** `balance`, `state`, `outcome`, `recent_rejections` read it. A query returns a value but adds nothing to
  the history, so it must not change anything (see `AccountWithBadQueries` for what happens when it tries).
- **Signal-with-start** creates the account on first use (the client side, `tutorial.entity_signals.send`).

What it teaches beyond signals and queries
- A **timer**: the account closes itself after `idle_close_after_s` without an accepted transaction.
- **Cancellation**: a client's `handle.cancel()` closes the account cleanly and ends the workflow.
- **Bad input**: a signal can not raise back to its sender, and an exception in a handler would either fail the
  whole workflow (an `ApplicationError`) or fail the workflow task (any other exception, retried again and again:
  a wedged workflow; both measured with `signal_handlers.FragileAccount`). So every handler validates its raw
  payload itself, logs why it rejects one (`workflow.logger`), keeps the state valid, and counts the rejection
  where a query can see it.

The client side (signal-with-start, the signal-then-query probes, the busy-worker noise) is
`tutorial.entity_signals`; the console is `tutorial.consoles`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RawValue

from . import domain

SIGNALS = ("deposit", "withdraw", "close")
PAYLOAD_FIELDS = ("amount", "request_id")
KEEP_REJECTIONS = 100


# --------------------------------------------------------------------------------------------------------------
# What travels: the workflow's input, and what its queries return
# --------------------------------------------------------------------------------------------------------------

@dataclass
class AccountConfig:
    """The workflow's input: which account, and how it behaves."""

    account_id: str
    idle_close_after_s: float = 24 * 3600.0  # the timer: close after this long without an accepted transaction
    handler_delay_ms: float = 0.0  # demo knob (C13): every signal handler blocks this long, like a slow library call


@dataclass
class Rejection:
    """A signal the account refused, and why (a signal cannot tell its sender, so a query must)."""

    signal: str
    reason: str
    request_id: str = ""

    def __str__(self) -> str:
        return f"{self.signal}: {self.reason}"


@dataclass
class AccountState:
    """What the `state` query returns: everything a client may want to show about the account."""

    account_id: str
    balance: int
    open: bool
    transactions: int  # accepted deposits and withdrawals
    signals_received: int  # every signal that reached a handler, accepted or not
    rejected: int  # signals refused: bad payload, business rule, duplicate request id, closed account
    last_rejection: str
    closed_reason: str
    idle_close_after_s: float


# --------------------------------------------------------------------------------------------------------------
# Validation of a raw signal payload (pure, so it runs the same inside and outside the sandbox)
# --------------------------------------------------------------------------------------------------------------

def parse_payload(operation: str, raw: Any) -> domain.Transaction:
    """A signal's raw JSON payload as a `domain.Transaction`, or `domain.AccountError` saying what is wrong.

    The handlers take `Any` on purpose: with a typed parameter the SDK itself drops a payload it cannot
    decode (one log line, nothing counted, the sender never knows). Taking the raw value lets the account
    reject it with a reason a query can report.
    """
    if not isinstance(raw, dict):
        raise domain.AccountError(f"payload must be an object like {{'amount': 10, 'request_id': 'r1'}}, not {raw!r:.60}")
    unknown = sorted(set(raw) - set(PAYLOAD_FIELDS))
    if unknown:
        raise domain.AccountError(f"unknown field {unknown[0]!r} (fields: amount, request_id)")
    if "amount" not in raw:
        raise domain.AccountError("missing field 'amount'")
    amount = domain.check_amount(raw["amount"])
    request_id = raw.get("request_id", "")
    if not isinstance(request_id, str) or len(request_id) > 100:
        raise domain.AccountError("request_id must be a string of at most 100 characters")
    return domain.Transaction(operation=operation, amount=amount, request_id=request_id)


def payload(amount: int, request_id: str = "") -> dict[str, Any]:
    """The payload `deposit` and `withdraw` expect."""
    return {"amount": amount, "request_id": request_id}


# --------------------------------------------------------------------------------------------------------------
# The entity
# --------------------------------------------------------------------------------------------------------------

@workflow.defn
class SignalAccount:
    """A bank account that lives as long as it is open. Signals change it; queries read it."""

    @workflow.init
    def __init__(self, config: AccountConfig) -> None:
        # @workflow.init: the state exists before any handler runs, also for the signal of a signal-with-start.
        self.config = config
        self.account = domain.Account(account_id=config.account_id)
        self.signals_received = 0
        self.changes = 0  # accepted transactions; the idle timer restarts whenever this moves
        self.rejections: list[Rejection] = []
        self.rejected = 0
        self.closed_reason = ""

    @workflow.run
    async def run(self, config: AccountConfig) -> AccountState:
        """Wait for signals until the account closes: by the `close` signal, the idle timer, or cancellation."""
        idle = timedelta(seconds=config.idle_close_after_s)
        try:
            while self.account.open:
                seen = self.changes
                try:
                    # One durable timer per wait: a transaction wakes us up (and cancels it); silence fires it.
                    await workflow.wait_condition(lambda: self.changes != seen or not self.account.open,
                                                  timeout=idle, timeout_summary="idle close")
                except asyncio.TimeoutError:
                    self._close(f"idle for {config.idle_close_after_s:g} s")
        except asyncio.CancelledError:
            # The client called handle.cancel(). We close the account and finish normally, so the result is
            # the final statement (re-raising instead would end the workflow as Canceled, with no result).
            self._close("cancelled by a client")
        return self.state()

    # ---- signals: change the account, return nothing ---------------------------------------------------------

    # A handler that raised would fail the workflow (ApplicationError) or its workflow task, retried again and
    # again (any other exception: a wedged workflow). So handlers take whatever was sent (`Any`, and `*extra`
    # for surplus arguments) and reject it themselves.

    @workflow.signal
    def deposit(self, request: Any = None, *extra: Any) -> None:
        """Add money. Payload: {"amount": int, "request_id": str}."""
        self._transact("deposit", request, extra)

    @workflow.signal
    def withdraw(self, request: Any = None, *extra: Any) -> None:
        """Take money out, if the balance allows. Payload: {"amount": int, "request_id": str}."""
        self._transact("withdraw", request, extra)

    @workflow.signal
    def close(self, reason: Any = None, *extra: Any) -> None:
        """Close the account; the workflow then completes with the final state."""
        self.signals_received += 1
        if not self.account.open:
            self._reject("close", "account is already closed")
            return
        self._close(reason[:200] if isinstance(reason, str) and reason else "closed by the owner")

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Any other signal name (a typo, an old client): rejected and counted instead of buffered unseen."""
        self.signals_received += 1
        self._reject(name, f"unknown signal {name!r} (signals: {', '.join(SIGNALS)})")

    # ---- queries: read the account, change nothing -----------------------------------------------------------

    @workflow.query
    def balance(self) -> int:
        return self.account.balance

    @workflow.query
    def state(self) -> AccountState:
        return AccountState(
            account_id=self.account.account_id, balance=self.account.balance, open=self.account.open,
            transactions=self.account.transactions, signals_received=self.signals_received,
            rejected=self.rejected, last_rejection=str(self.rejections[-1]) if self.rejections else "",
            closed_reason=self.closed_reason, idle_close_after_s=self.config.idle_close_after_s,
        )

    @workflow.query
    def outcome(self, request_id: str) -> str:
        """What became of one request: "applied", "rejected: <reason>", or "" when the account has not seen it."""
        if request_id in self.account.applied:
            return "applied"
        for rejection in reversed(self.rejections):
            if rejection.request_id == request_id:
                return f"rejected: {rejection.reason}"
        return ""

    @workflow.query
    def recent_rejections(self) -> list[Rejection]:
        return list(self.rejections)

    # ---- the one place state changes -------------------------------------------------------------------------

    def _transact(self, operation: str, raw: Any, extra: tuple = ()) -> None:
        self.signals_received += 1
        if self.config.handler_delay_ms:
            _block(self.config.handler_delay_ms)
        request_id = raw.get("request_id", "") if isinstance(raw, dict) else ""
        request_id = request_id if isinstance(request_id, str) else ""
        try:
            if extra:
                raise domain.AccountError(f"expected one payload, got {1 + len(extra)} arguments")
            txn = parse_payload(operation, raw)
            if txn.request_id and txn.request_id in self.account.applied:
                raise domain.AccountError(f"request {txn.request_id!r} was already applied")
            self.account = domain.apply(self.account, txn)
        except domain.AccountError as err:  # never let a bad signal fail the workflow task
            self._reject(operation, str(err), request_id)
            return
        self.changes += 1

    def _reject(self, signal: str, reason: str, request_id: str = "") -> None:
        self.rejected += 1
        self.rejections = (self.rejections + [Rejection(signal, reason, request_id)])[-KEEP_REJECTIONS:]
        workflow.logger.warning("account %s rejected %s: %s", self.account.account_id, signal, reason)

    def _close(self, reason: str) -> None:
        if self.account.open:
            self.account = domain.close(self.account)
            self.closed_reason = reason


def _block(ms: float) -> None:
    """Block the handler for `ms`, as a synchronous call to a slow library would (a demo of a slow handler,
    not a pattern: real workflow code must not block). It changes no state, so replay stays deterministic.
    Keep it well under 2 s per workflow task, or the SDK reports a potential deadlock."""
    with workflow.unsafe.sandbox_unrestricted():
        time.sleep(ms / 1000)


# --------------------------------------------------------------------------------------------------------------
# C9: what a query must not do. Same account, two extra queries that break the rule.
# --------------------------------------------------------------------------------------------------------------

@activity.defn
async def record_audit(account_id: str) -> str:
    """An activity a query would like to run (it may not)."""
    return f"audited {account_id}"


@workflow.defn
class AccountWithBadQueries(SignalAccount):
    """`SignalAccount` plus two queries that break the rule. Do not copy them."""

    @workflow.run
    async def run(self, config: AccountConfig) -> AccountState:
        return await super().run(config)

    @workflow.query
    def audited_balance(self) -> int:
        """Tries to issue a command (start an activity) from a query: the SDK refuses at run time."""
        workflow.start_activity(record_audit, self.account.account_id, start_to_close_timeout=timedelta(seconds=5))
        return self.account.balance

    @workflow.query
    def balance_with_bonus(self) -> int:
        """Changes state from a query. Python lets it happen, in this worker's memory only: the history never
        hears of it, so the next replay (after an eviction or a worker restart) rebuilds the state without it."""
        self.account = replace(self.account, balance=self.account.balance + 100)
        return self.account.balance


WORKFLOWS = [SignalAccount, AccountWithBadQueries]
ACTIVITIES = [record_audit]
