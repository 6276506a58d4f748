"""Workflows for notebook 01: one short workflow per client request, the account's status in SQLite.

A client request (deposit or withdraw on an account) starts one `AccountRequest` workflow. Its one activity
applies the request to the database in a single transaction, and the workflow's result is the reply. The
workflow then ends: nothing stays open between requests, so the workflow code can change freely between
them (`AccountRequestWithFee` is the "next release" of the same workflow type), and no history ever grows.

`NaiveAccountRequest` does the same job carelessly: it reads the balance in one activity, decides in the
workflow, and writes the new balance in another activity. Two such requests on one account at once lose
an update. `ExerciseWithdraw` runs the learner's own SQL for the exercise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ApplicationErrorCategory

with workflow.unsafe.imports_passed_through():
    import sqlite3

    from .workflows import domain
    from .status_db import StatusDB
    from .workshop import state_dir, unique

WORKFLOW_TYPE = "AccountRequest"  # what clients start; both releases below register under this name
WITHDRAWAL_FEE = 2  # the rule release v2 adds
HISTORY_EVENT_LIMIT = 51_200  # the server terminates a workflow whose history reaches this many events
HISTORY_EVENT_WARN = 10_240  # ... and warns from this many
HISTORY_SIZE_LIMIT = 50 * 1024 * 1024  # bytes
HISTORY_SIZE_WARN = 10 * 1024 * 1024

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


def business_error(err: domain.AccountError) -> ApplicationError:
    """A rule said no: retrying cannot help, so the error is non-retryable and says why. BENIGN: an expected
    outcome, so the worker does not log it as a failure."""
    return ApplicationError(str(err), type=type(err).__name__, non_retryable=True,
                            category=ApplicationErrorCategory.BENIGN)


class StatusActivities:
    """The activities that touch the database; one instance per database, registered with the worker."""

    def __init__(self, db: StatusDB):
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
            raise business_error(err) from None
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
        raise business_error(err) from None
    if request.review_seconds > 0:
        await workflow.sleep(request.review_seconds)
    change = Change(workflow.info().workflow_id, request.account_id, request.operation, request.amount, fee, code)
    try:
        return await workflow.execute_activity_method(
            StatusActivities.apply_request, change, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=DB_RETRY)
    except ActivityError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.non_retryable:
            raise ApplicationError(cause.message, type=cause.type, non_retryable=True, category=cause.category) from None
        raise


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
            raise business_error(err) from None
        if request.review_seconds > 0:
            await workflow.sleep(request.review_seconds)  # meanwhile another request may change the balance
        await workflow.execute_activity_method(
            StatusActivities.write_balance,
            Write(request_id, request.account_id, request.operation, request.amount, balance, after.balance),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=DB_RETRY)
        return Reply(request_id, request.account_id, request.operation, request.amount, after.balance, 0, "naive")


# ------------------------------------------------------------------------------------------- the client


class Bank:
    """The client side of the pattern: every request starts one workflow, by type name, and awaits its reply."""

    def __init__(self, client, task_queue: str, *, workflow_type: str = WORKFLOW_TYPE):
        self.client = client
        self.task_queue = task_queue
        self.workflow_type = workflow_type
        self.handles: list = []  # every request this Bank sent, oldest first

    async def start(self, account_id: str, operation: str, amount: int, *, review_seconds: float = 0.0,
                    workflow_type: str | None = None):
        """Start the request's workflow and return its handle (the server has persisted it)."""
        handle = await self.client.start_workflow(
            workflow_type or self.workflow_type, Request(account_id, operation, amount, review_seconds),
            id=unique(f"nb01-{account_id}-{operation}"), task_queue=self.task_queue, result_type=Reply)
        self.handles.append(handle)
        return handle

    async def send(self, account_id: str, operation: str, amount: int, **kw) -> Reply:
        """Send a request and wait for the reply; a business error raises `WorkflowFailureError`."""
        handle = await self.start(account_id, operation, amount, **kw)
        return await handle.result()

    async def burst(self, account_id: str, operation: str, amount: int, n: int, *,
                    on_reply: Callable[[], None] | None = None, **kw) -> list:
        """`n` requests on one account at the same time; returns each reply or exception, in order.
        `on_reply()` is called as each one finishes (for a progress bar)."""
        handles = await asyncio.gather(*(self.start(account_id, operation, amount, **kw) for _ in range(n)))

        async def reply(handle):
            try:
                return await handle.result()
            finally:
                if on_reply is not None:
                    on_reply()

        return await asyncio.gather(*(reply(h) for h in handles), return_exceptions=True)

    async def open_requests(self) -> list[str]:
        """Ids of requests whose workflow is still open (asks the server about each)."""
        statuses = await asyncio.gather(*(h.describe() for h in self.handles))
        return [h.id for h, d in zip(self.handles, statuses) if d.status is None or d.status.name == "RUNNING"]


def parse_form(values: dict[str, str]) -> dict:
    """The form's text fields as a request; `domain.AccountError` (a short message) for anything wrong."""
    return {
        "account_id": domain.parse_account_id(values.get("account", "")),
        "operation": domain.parse_operation(values.get("operation", "")),
        "amount": domain.parse_amount(values.get("amount", "")),
    }


async def history_size(handle) -> dict:
    """How big a request's history is: events and bytes, beside the server's limits."""
    from temporalio.api.history.v1 import History

    fetched = await handle.fetch_history()
    events = list(fetched.events)
    size = History(events=events).ByteSize()
    return {"workflow id": handle.id, "events": len(events), "bytes": size,
            "% of event limit": round(100 * len(events) / HISTORY_EVENT_LIMIT, 3),
            "% of size limit": round(100 * size / HISTORY_SIZE_LIMIT, 4)}


async def activity_attempts(handle) -> list[int]:
    """The attempt number of every activity run that completed or failed for good (1 = first try)."""
    fetched = await handle.fetch_history()
    return [e.activity_task_started_event_attributes.attempt for e in fetched.events
            if e.HasField("activity_task_started_event_attributes")]


# ------------------------------------------------------------------------------------------- the exercise


class ExerciseActivities:
    """Runs a learner's `withdraw(conn, account_id, amount) -> bool` as an activity."""

    def __init__(self, db: StatusDB, withdraw: Callable):
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


def attempted(withdraw: Callable) -> bool:
    """False while `withdraw` is still the stub (it raises NotImplementedError)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        db = StatusDB(Path(folder) / "probe.sqlite")
        db.open_account("probe", 5)
        conn = db.connect()
        try:
            withdraw(conn, "probe", 1)
        except NotImplementedError:
            return False
        except Exception:
            return True  # an attempt, even a broken one: the check will say what is wrong
        finally:
            conn.close()
    return True


@dataclass
class ExerciseResult:
    requests: int
    amount: int
    start_balance: int
    succeeded: int
    refused: int
    final_balance: int
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def expected_balance(self) -> int:
        return self.start_balance - self.amount * self.succeeded

    @property
    def lost(self) -> int:
        """Money the account should have lost but did not: withdrawals reported done yet overwritten."""
        return self.final_balance - self.expected_balance

    @property
    def passed(self) -> bool:
        possible = min(self.requests, self.start_balance // self.amount)
        return (not self.errors and self.lost == 0 and self.final_balance >= 0 and self.succeeded == possible)

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        errors = f"; errors: {self.errors[0]}" if self.errors else ""
        return (f"{verdict}: {self.requests} concurrent withdrawals of {self.amount} from {self.start_balance}: "
                f"{self.succeeded} succeeded, {self.refused} refused, final balance {self.final_balance} "
                f"(expected {self.expected_balance}, lost {self.lost}) in {self.seconds:.1f} s{errors}")


async def check_withdraw(client, withdraw: Callable, *, requests: int = 50, amount: int = 10,
                         start_balance: int = 300, db: StatusDB | None = None) -> ExerciseResult:
    """Run `requests` concurrent withdrawal workflows whose activity calls `withdraw`, and measure the result."""
    from .errors import explain
    from .worker import WorkerController

    own_db = db is None
    if own_db:  # a file of this run's own: two kernels checking at once must not share it
        db = StatusDB(state_dir() / f"{unique('nb01-exercise')}.sqlite")
    account = "exercise"
    db.open_account(account, start_balance)
    controller = WorkerController(client, task_queue=unique("nb01-exercise"), workflows=[ExerciseWithdraw],
                                  activities=[ExerciseActivities(db, withdraw).run_withdraw])
    started = time.perf_counter()
    async with controller:
        results = await asyncio.gather(*(
            client.execute_workflow(ExerciseWithdraw.run, args=[account, amount], id=unique("nb01-exercise"),
                                    task_queue=controller.task_queue)
            for _ in range(requests)), return_exceptions=True)
    errors = [explain(r) for r in results if isinstance(r, BaseException)]
    final_balance = db.balance(account)
    if own_db:
        db.drop()
    return ExerciseResult(requests=requests, amount=amount, start_balance=start_balance,
                          succeeded=sum(1 for r in results if r is True),
                          refused=sum(1 for r in results if r is False),
                          final_balance=final_balance, errors=errors,
                          seconds=time.perf_counter() - started)
