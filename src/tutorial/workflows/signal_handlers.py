"""Workflows for notebook 02's experiments on what a signal handler does: await, raise, or answer.

- `ReviewedAccount` (C11): its `deposit` handler counts the deposit as *received*, then, when the account is
  configured to review deposits, **awaits an activity** (`review_deposit`, a fraud check that answers when the
  fraud desk approves) before it credits the money. Between the two the state is half-applied, and a query sent
  after `signal()` returned sees exactly that. With `review=False` the same handler credits at once: there is
  no half-applied state to see. It also has one update, `deposit_now`, for the difference a result makes (C9).
- `FragileAccount` (issue item 4): a handler that lets an exception out, the mistake `SignalAccount` avoids.
  An `ApplicationError` fails the whole workflow; any other exception fails the workflow task, which the
  worker retries, again and again (a wedged workflow).

The fraud desk lives in this process: `approve(request_id)` releases the review of one deposit. That keeps the
experiment deterministic (nothing is credited before we say so, however busy the machine is), as a manual review
would be. A review nobody approves is approved after `REVIEW_GIVES_UP_S` so that nothing waits for ever.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

from . import domain
from .failures import business_failure
from .signal_account import parse_payload

REVIEW_GIVES_UP_S = 120.0

# --------------------------------------------------------------------------------------------------------------
# The fraud desk: an activity that answers when the notebook (or a test) approves the deposit
# --------------------------------------------------------------------------------------------------------------

_desk: dict[str, asyncio.Event] = {}


def _ticket(request_id: str) -> asyncio.Event:
    return _desk.setdefault(request_id, asyncio.Event())


def approve(request_id: str) -> None:
    """The fraud desk approves deposit `request_id` (before or while its review runs)."""
    _ticket(request_id).set()


@activity.defn
async def review_deposit(request_id: str) -> str:
    """The fraud check: waits until the deposit is approved (or `REVIEW_GIVES_UP_S` passed), then says so."""
    try:
        await asyncio.wait_for(_ticket(request_id).wait(), REVIEW_GIVES_UP_S)
        return "approved"
    except asyncio.TimeoutError:
        return "approved by default"
    finally:
        _desk.pop(request_id, None)


# --------------------------------------------------------------------------------------------------------------
# C11: a handler that awaits
# --------------------------------------------------------------------------------------------------------------

@dataclass
class ReviewConfig:
    account_id: str
    review: bool = True  # False: the deposit handler credits at once (a synchronous handler)


@dataclass
class ReviewState:
    """What the `state` query returns."""

    balance: int
    received: int  # deposits whose handler has started
    credited: int  # deposits whose handler has finished: the money is in
    in_review: list[str]  # request ids received, not credited yet

    @property
    def half_applied(self) -> bool:
        return self.received > self.credited


@workflow.defn
class ReviewedAccount:
    """An account whose deposits may wait for a fraud check before they are credited."""

    @workflow.init
    def __init__(self, config: ReviewConfig) -> None:
        self.config = config
        self.account = domain.Account(account_id=config.account_id)
        self.received = 0
        self.in_review: list[str] = []
        self.closed = False

    @workflow.run
    async def run(self, config: ReviewConfig) -> int:
        await workflow.wait_condition(lambda: self.closed and not self.in_review)
        return self.account.balance

    @workflow.signal
    async def deposit(self, raw: Any) -> None:
        """Count the deposit as received; review it if the account says so (this awaits); then credit it."""
        try:
            txn = parse_payload("deposit", raw)
        except domain.AccountError as err:
            workflow.logger.warning("rejected deposit: %s", err)
            return
        self.received += 1
        self.in_review.append(txn.request_id)
        if self.config.review:
            await workflow.execute_activity(review_deposit, txn.request_id,
                                            start_to_close_timeout=timedelta(seconds=REVIEW_GIVES_UP_S + 30),
                                            retry_policy=RetryPolicy(maximum_attempts=3))
        self.account = domain.apply(self.account, txn)
        self.in_review.remove(txn.request_id)

    @workflow.update
    def deposit_now(self, amount: int) -> int:
        """The same money as an update: credited at once, and the new balance goes back to the caller (C9)."""
        self.account = domain.apply(self.account, domain.Transaction("deposit", domain.check_amount(amount), ""))
        return self.account.balance

    @workflow.signal
    def close(self) -> None:
        self.closed = True

    @workflow.query
    def state(self) -> ReviewState:
        credited = self.received - len(self.in_review)
        return ReviewState(balance=self.account.balance, received=self.received, credited=credited,
                           in_review=list(self.in_review))


# --------------------------------------------------------------------------------------------------------------
# Item 4: a handler that raises
# --------------------------------------------------------------------------------------------------------------

@dataclass
class FragileConfig:
    account_id: str
    raise_as: str = "application"  # "application": ApplicationError; "plain": the AccountError itself


@workflow.defn
class FragileAccount:
    """`deposit` lets a bad payload's error out of the handler, instead of rejecting it. Do not copy it."""

    @workflow.init
    def __init__(self, config: FragileConfig) -> None:
        self.config = config
        self.account = domain.Account(account_id=config.account_id)
        self.closed = False

    @workflow.run
    async def run(self, config: FragileConfig) -> int:
        await workflow.wait_condition(lambda: self.closed)
        return self.account.balance

    @workflow.signal
    def deposit(self, raw: Any) -> None:
        try:
            txn = parse_payload("deposit", raw)
        except domain.AccountError as err:
            if self.config.raise_as == "application":
                raise business_failure(err) from None  # an ApplicationError: fails the workflow
            raise  # any other exception: fails the workflow task, which the worker retries
        self.account = domain.apply(self.account, txn)

    @workflow.signal
    def close(self) -> None:
        self.closed = True

    @workflow.query
    def balance(self) -> int:
        return self.account.balance


WORKFLOWS = [ReviewedAccount, FragileAccount]
ACTIVITIES = [review_deposit]
