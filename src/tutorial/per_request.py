"""The client side of notebook 01: one short workflow per request, the account's status in SQLite.

`Bank` sends each request as one `AccountRequest` workflow (the workflows and their activities are in
`tutorial.workflows.account_requests`, the database in `tutorial.status_db`) and awaits its reply.
`history_size` and `activity_attempts` measure what the server recorded; `history_limit_never_in_sight` (C7)
and `database_reflects_replies` (C8) are the notebook's checks; `check_withdraw` runs the exercise: many
concurrent withdrawal workflows calling the learner's SQL, and what they did to the balance. The deploy
experiment (C6) is `tutorial.deploys`.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.history.v1 import History

from . import limits
from .errors import explain
from .status_db import StatusDB
from .worker import WorkerController
from .workflows import domain
from .workflows.account_requests import WORKFLOW_TYPE, ExerciseActivities, ExerciseWithdraw, Reply, Request
from .workshop import state_dir, unique


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
    """The form's text fields as a request; `domain.AccountError` (a short message, naming the field as the form
    labels it) for anything wrong."""
    try:
        account_id = domain.parse_account_id(values.get("account", ""))
    except domain.AccountError as err:  # the domain says "account id"; the form's field is "account"
        raise domain.AccountError(str(err).replace("account id:", "account:", 1)) from None
    return {
        "account_id": account_id,
        "operation": domain.parse_operation(values.get("operation", "")),
        "amount": domain.parse_amount(values.get("amount", "")),
    }


async def history_size(handle) -> dict:
    """How big a request's history is: events and bytes, beside the server's limits."""
    fetched = await handle.fetch_history()
    events = list(fetched.events)
    size = History(events=events).ByteSize()
    return {"workflow id": handle.id, "events": len(events), "bytes": size,
            "% of event limit": round(100 * len(events) / limits.HISTORY_EVENTS_MAX.value, 3),
            "% of size limit": round(100 * size / limits.HISTORY_BYTES_MAX.value, 4)}


def sizes_table(sizes: list[dict], last: int | None = None) -> list[dict]:
    """`history_size` rows for a table: the percentages as text with enough digits to be more than 0.00."""
    rows = sizes[-last:] if last else sizes
    return [{**s, "% of event limit": f"{s['% of event limit']:.3f}", "% of size limit": f"{s['% of size limit']:.4f}"}
            for s in rows]


async def activity_attempts(handle) -> list[int]:
    """The attempt number of every activity run that completed or failed for good (1 = first try)."""
    fetched = await handle.fetch_history()
    return [e.activity_task_started_event_attributes.attempt for e in fetched.events
            if e.HasField("activity_task_started_event_attributes")]


# ------------------------------------------------------------------------------------------- the checks


def history_limit_never_in_sight(sizes: list[dict], limit: int = limits.HISTORY_EVENTS_WARN.value) -> bool:
    """C7: every history measured (`history_size` rows, oldest request first) stays below `limit` events, and
    the histories do not grow with the number of requests: the longest of the later half is no longer than the
    longest of the earlier half. True for one workflow per request; False for one entity workflow measured
    after every few signals (its one history grows with each), and False once a history reaches `limit`."""
    events = [int(s["events"]) for s in sizes]
    if len(events) < 2:
        raise ValueError("measure at least two histories (or one history twice) to see whether it grows")
    half = len(events) // 2
    return max(events) < limit and max(events[half:]) <= max(events[:half])


def database_reflects_replies(db: StatusDB, replies: list[Reply]) -> bool:
    """C8: the database holds what the client was told. Every reply's request is in the request log with the
    balance the reply gave, and every account replied about has the balance its logged changes add up to
    (nothing a reply reported was overwritten). False for read-then-write requests that ran at the same time
    (a lost update), or for a reply whose database change never happened."""
    log = db.requests_frame().set_index("request_id")
    for reply in replies:
        if reply.request_id not in log.index or int(log.loc[reply.request_id, "balance_after"]) != reply.balance:
            return False
    return db.consistent(sorted({r.account_id for r in replies}))


def retry_budget(policy, attempt_seconds: float = 0.0) -> dict:
    """What a retry policy allows before the activity fails for good: attempts, the waits between them, and
    the total when each attempt also takes `attempt_seconds` (a locked database waits `busy_timeout`)."""
    waits, interval = [], policy.initial_interval.total_seconds()
    for _ in range(policy.maximum_attempts - 1):
        waits.append(min(interval, policy.maximum_interval.total_seconds()))
        interval *= policy.backoff_coefficient
    return {"attempts": policy.maximum_attempts, "waiting s": round(sum(waits), 1),
            "total s": round(sum(waits) + policy.maximum_attempts * attempt_seconds, 1)}


# ------------------------------------------------------------------------------------------- the exercise


def probe_withdraw(withdraw: Callable):
    """Call `withdraw` once, on a throwaway database, and return what it returned: the probe the exercise's
    check cell hands to `exercises.attempted` (the stub raises NotImplementedError)."""
    with tempfile.TemporaryDirectory() as folder:
        db = StatusDB(Path(folder) / "probe.sqlite")
        db.open_account("probe", 5)
        try:
            with closing(db.connect()) as conn:
                return withdraw(conn, "probe", 1)
        finally:
            db.drop()


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
