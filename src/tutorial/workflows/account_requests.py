"""Workflows for notebook 01: one short workflow per client request, the account's status in SQLite.

A client request (deposit or withdraw on an account) starts one `AccountRequest` workflow. Its one activity
applies the request to the database in a single transaction, and the workflow's result is the reply. The
workflow then ends, so no history ever grows, and a new release of the workflow code only meets the requests
in flight at the deploy: `AccountRequestWithFee` (v2, a fee) can finish a request v1 started;
`AccountRequestWithCheck` (another v2, one more activity before the review) cannot: replaying v1's history
fails with a nondeterminism error.

`NaiveAccountRequest` does the same job carelessly: it reads the balance in one activity, decides in the
workflow, and writes the new balance in another activity. Two such requests on one account at once lose
an update. `ExerciseWithdraw` runs the learner's own SQL for the exercise.

The activities get the database as an object (`tutorial.status_db.StatusDB` in the notebook): anything with
the methods of `AccountStore`. The client side (`Bank`, the form, the measurements) is `tutorial.per_request`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from . import domain
from .failures import business_failure, passed_on

WORKFLOW_TYPE = "AccountRequest"  # what clients start; both releases below register under this name
WITHDRAWAL_FEE = 2  # the rule release v2 adds

ACTIVITY_TIMEOUT = timedelta(seconds=10)
# A locked database is transient: retry soon and often. Business errors are raised non-retryable instead.
DB_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
                       maximum_interval=timedelta(seconds=5), maximum_attempts=20)


@dataclass
class Request:
    """What the client sends: one operation on one account. `review_seconds` simulates a slow step (say a
    fraud check) between receiving the request and changing the account."""

    account_id: str
    operation: str
    amount: int
    review_seconds: float = 0.0


@dataclass
class Change:
    """What a workflow asks the database activity to apply."""

    request_id: str
    account_id: str
    operation: str
    amount: int
    fee: int = 0
    code: str = ""


@dataclass
class Write:
    """The careless write: a balance computed from an earlier read."""

    request_id: str
    account_id: str
    operation: str
    amount: int
    old_balance: int
    new_balance: int


@dataclass
class Reply:
    """The workflow's result: what the client gets back."""

    request_id: str
    account_id: str
    operation: str
    amount: int
    balance: int
    fee: int = 0
    code: str = ""  # which release of the workflow code handled the request

    def line(self) -> str:
        fee = f" (fee {self.fee})" if self.fee else ""
        return (f"{self.operation} {self.amount}{fee} on {self.account_id}: balance now {self.balance} "
                f"[code {self.code}]")


# --------------------------------------------------------------------------------------------- activities


class AccountStore(Protocol):
    """What the activities need from the database (`tutorial.status_db.StatusDB` has it)."""

    def apply(self, request_id: str, account_id: str, operation: str, amount: int, *, fee: int = 0,
              code: str = "") -> Any: ...

    def read_balance(self, account_id: str) -> int: ...

    def write_balance(self, request_id: str, account_id: str, operation: str, amount: int, *,
                      old_balance: int, new_balance: int) -> None: ...

    def connect(self) -> sqlite3.Connection: ...


class StatusActivities:
    """The activities that touch the database; one instance per database, registered with the worker."""

    def __init__(self, db: AccountStore):
        self.db = db

    def all(self) -> list[Callable]:
        return [self.apply_request, self.read_balance, self.write_balance]

    @activity.defn
    def apply_request(self, change: Change) -> Reply:
        """One transaction: check the rules, write balance and log, commit; or write nothing."""
        try:
            done = self.db.apply(change.request_id, change.account_id, change.operation, change.amount,
                                 fee=change.fee, code=change.code)
        except domain.AccountError as err:
            raise business_failure(err) from None
        except sqlite3.IntegrityError as err:  # a constraint said no: as final as a business rule
            raise ApplicationError(f"the database refused the change: {err}", type="ConstraintViolated",
                                   non_retryable=True) from None
        # sqlite3.OperationalError ("database is locked") propagates: Temporal retries the activity.
        return Reply(done.request_id, done.account_id, done.operation, done.amount, done.balance, done.fee, done.code)

    @activity.defn
    def read_balance(self, account_id: str) -> int:
        return self.db.read_balance(account_id)

    @activity.defn
    def write_balance(self, write: Write) -> None:
        self.db.write_balance(write.request_id, write.account_id, write.operation, write.amount,
                              old_balance=write.old_balance, new_balance=write.new_balance)


# ---------------------------------------------------------------------------------------------- workflows


async def _apply(request: Request, *, fee: int, code: str) -> Reply:
    """Shared by both releases: validate, optionally review, then one activity applies the change."""
    try:
        domain.check_amount(request.amount)
        domain.parse_operation(request.operation)
    except domain.AccountError as err:
        raise business_failure(err) from None
    if request.review_seconds > 0:
        await workflow.sleep(request.review_seconds)
    change = Change(workflow.info().workflow_id, request.account_id, request.operation, request.amount, fee, code)
    try:
        return await workflow.execute_activity_method(
            StatusActivities.apply_request, change, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=DB_RETRY)
    except ActivityError as err:
        failure = passed_on(err)
        if failure is err:
            raise  # not a business failure (the database stayed locked through every retry): fail with it
        raise failure from None  # the client reads "InsufficientFunds", not "activity failed"


@workflow.defn(name=WORKFLOW_TYPE)
class AccountRequest:
    """Release v1: apply the request, reply with the new balance."""

    @workflow.run
    async def run(self, request: Request) -> Reply:
        return await _apply(request, fee=0, code="v1")


@workflow.defn(name=WORKFLOW_TYPE)
class AccountRequestWithFee:
    """Release v2 of the same workflow type: withdrawals now cost a fee, charged in the same transaction."""

    @workflow.run
    async def run(self, request: Request) -> Reply:
        fee = WITHDRAWAL_FEE if request.operation == "withdraw" else 0
        return await _apply(request, fee=fee, code="v2")


@workflow.defn(name=WORKFLOW_TYPE)
class AccountRequestWithCheck:
    """A release v2 that is *not* compatible with requests v1 started: before the review it asks the database
    for the balance (one more activity) and refuses a withdrawal that cannot fit. A request v1 left waiting in
    its review has a history that starts with v1's timer; this code's first command is an activity instead,
    so the new worker cannot replay that history (a nondeterminism error). New requests run it fine."""

    @workflow.run
    async def run(self, request: Request) -> Reply:
        if request.operation == "withdraw" and request.amount > 0:
            balance = await workflow.execute_activity_method(
                StatusActivities.read_balance, request.account_id, start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=DB_RETRY)
            if balance < request.amount:
                raise business_failure(domain.InsufficientFunds(
                    f"cannot withdraw {request.amount}: balance is {balance}"))
        return await _apply(request, fee=0, code="v2-check")


@workflow.defn
class NaiveAccountRequest:
    """The careless version: read in one activity, decide here, write in another. Loses concurrent updates."""

    @workflow.run
    async def run(self, request: Request) -> Reply:
        request_id = workflow.info().workflow_id
        balance = await workflow.execute_activity_method(
            StatusActivities.read_balance, request.account_id, start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=DB_RETRY)
        try:
            after = domain.apply(domain.Account(request.account_id, balance=balance),
                                 domain.Transaction(request.operation, request.amount, request_id))
        except domain.AccountError as err:
            raise business_failure(err) from None
        if request.review_seconds > 0:
            await workflow.sleep(request.review_seconds)  # meanwhile another request may change the balance
        await workflow.execute_activity_method(
            StatusActivities.write_balance,
            Write(request_id, request.account_id, request.operation, request.amount, balance, after.balance),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=DB_RETRY)
        return Reply(request_id, request.account_id, request.operation, request.amount, after.balance, 0, "naive")


# ------------------------------------------------------------------------------------------- the exercise


class ExerciseActivities:
    """Runs a learner's `withdraw(conn, account_id, amount) -> bool` as an activity."""

    def __init__(self, db: AccountStore, withdraw: Callable):
        self.db = db
        self.withdraw = withdraw

    @activity.defn(name="exercise_withdraw")
    def run_withdraw(self, account_id: str, amount: int) -> bool:
        conn = self.db.connect()
        try:
            done = bool(self.withdraw(conn, account_id, amount))
            if conn.in_transaction:
                conn.execute("COMMIT")
            return done
        except sqlite3.OperationalError:
            raise  # locked: transient, retried
        except Exception as err:  # a bug in the learner's code: report it once, do not retry forever
            raise ApplicationError(f"{type(err).__name__}: {err}", type="ExerciseBug", non_retryable=True) from None
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()


@workflow.defn
class ExerciseWithdraw:
    @workflow.run
    async def run(self, account_id: str, amount: int) -> bool:
        return await workflow.execute_activity(
            "exercise_withdraw", args=[account_id, amount], start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=DB_RETRY, result_type=bool)
