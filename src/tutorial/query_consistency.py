"""What a query sent after a signal sees (C11), and how a query fails while no worker can answer it.

Measured on the dev server, and what this module's experiments show again each run:
- The server holds a query while a workflow task of that workflow is pending or running, and answers it after
  that task. A query sent once `signal()` returned therefore waits for the task that runs the signal's handler:
  it never misses a **synchronous** handler's change (`later_queries_saw_it_applied`).
- A handler that **awaits** (an activity, a timer) finishes in a later task. The query is answered after the
  first one, and sees the state half-applied: deposit received, money not credited
  (`later_queries_saw_half_applied`). That is why a client queries again until it sees what it waits for.
- With no worker polling the task queue for about 20 s, the server no longer lets a query simply time out: it
  fails it with FAILED_PRECONDITION "no poller seen for task queue recently", one second before the caller's
  deadline (`no_poller`, `said_no_poller`). Before that, and with a workflow task pending, the query is held.
- While one query is held, the next gets RESOURCE_EXHAUSTED "consistent query buffer is full"
  (`limits.BUFFERED_QUERIES`; `held_queries`, `buffer_refused_the_rest`). The SDK's `handle.query` retries
  that error by itself, so only the raw gRPC call shows it.
`entity_signals.query_until` waits out both (`entity_signals.query_not_yet`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.workflowservice.v1 import QueryWorkflowRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError

from . import limits
from .entity_signals import query_until
from .workflows.signal_account import payload
from .workflows.signal_handlers import ReviewConfig, ReviewedAccount, ReviewState, approve

# ---- C11: a query sent after signal() returned ----------------------------------------------------------------


@dataclass
class AfterAck:
    """One deposit, and the state queries showed around it."""

    review: bool  # True: the handler awaited the fraud-check activity
    before: ReviewState  # just before the signal
    first: ReviewState  # the first query sent once signal() had returned
    final: ReviewState  # the query that finally showed the deposit credited
    first_ms: float  # signal sent -> first answer
    visible_ms: float  # signal sent -> credited deposit seen
    queries: int  # queries it took, the first one included


async def open_reviewed(client: Client, account_id: str, *, task_queue: str, review: bool) -> WorkflowHandle:
    """A `ReviewedAccount`, its first workflow task done."""
    handle = await client.start_workflow(ReviewedAccount.run, ReviewConfig(account_id, review=review),
                                         id=account_id, task_queue=task_queue)
    await handle.query(ReviewedAccount.state)
    return handle


async def deposit_then_query(handle: WorkflowHandle, amount: int, request_id: str, *, review: bool,
                             timeout: float = 20.0) -> AfterAck:
    """Deposit, query once `signal()` returned, let the fraud desk approve, query again until credited."""
    state = ReviewedAccount.state
    before = await handle.query(state)
    started = time.perf_counter()
    await handle.signal(ReviewedAccount.deposit, payload(amount, request_id))
    first = await handle.query(state)
    first_ms = (time.perf_counter() - started) * 1000
    approve(request_id)  # the review (if any) may end now; nothing is credited before this line
    seen = await query_until(handle, state, holds=lambda s: s.credited > before.credited, timeout=timeout)
    return AfterAck(review, before, first, seen.value, first_ms, (time.perf_counter() - started) * 1000,
                    1 + seen.tries)


async def after_ack_runs(handle: WorkflowHandle, n: int, *, review: bool, prefix: str,
                         on_step: Callable[[], None] | None = None) -> list[AfterAck]:
    """`n` deposits of 1, one after the other (`deposit_then_query`)."""
    runs = []
    for i in range(n):
        runs.append(await deposit_then_query(handle, 1, f"{prefix}-{i}", review=review))
        if on_step:
            on_step()
    return runs


def _half_applied(r: AfterAck) -> bool:
    return (r.first.received == r.before.received + 1 and r.first.credited == r.before.credited
            and r.first.balance == r.before.balance)


def _applied(r: AfterAck) -> bool:
    return r.first.credited == r.before.credited + 1 and r.first.balance == r.before.balance + 1


def later_queries_saw_half_applied(runs: list[AfterAck]) -> bool:
    """C11: every query sent after `signal()` returned saw the deposit received but not credited (the handler
    was still awaiting its activity), so the client had to query again. False for a synchronous handler."""
    return bool(runs) and all(_half_applied(r) for r in runs) and all(r.final.balance == r.before.balance + 1
                                                                      for r in runs)


def later_queries_saw_it_applied(runs: list[AfterAck]) -> bool:
    """C11's other half: every query sent after `signal()` returned already saw a synchronous handler's change
    (the server held it until the task had run the handler). False for a handler that awaits."""
    return bool(runs) and all(_applied(r) for r in runs)


def runs_table(runs: list[AfterAck]) -> list[dict[str, Any]]:
    """One row per deposit, for `widgets.table`."""
    return [{"handler": "awaits review" if r.review else "synchronous",
             "before (received/credited/balance)": f"{r.before.received}/{r.before.credited}/{r.before.balance}",
             "first query after the ack": f"{r.first.received}/{r.first.credited}/{r.first.balance}",
             "half-applied": _half_applied(r), "queries": r.queries, "first answer ms": round(r.first_ms, 1),
             "credited seen ms": round(r.visible_ms, 1)} for r in runs]


# ---- a query's failure modes -----------------------------------------------------------------------------------

@dataclass
class Answer:
    """One raw QueryWorkflow call: its answer, or the error status the server gave."""

    status: str  # "OK" or the gRPC status name
    message: str
    ms: float


async def raw_query(client: Client, workflow_id: str, query_type: str, *, timeout: float) -> Answer:
    """The QueryWorkflow gRPC call without the SDK's retries (`handle.query` retries RESOURCE_EXHAUSTED)."""
    request = QueryWorkflowRequest(namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id),
                                   query=WorkflowQuery(query_type=query_type))
    started = time.perf_counter()
    try:
        response = await client.workflow_service.query_workflow(request, retry=False,
                                                                timeout=timedelta(seconds=timeout))
        status, message = "OK", ",".join(p.data.decode(errors="replace") for p in response.query_result.payloads)
    except RPCError as err:
        status, message = err.status.name if err.status else "UNKNOWN", err.message
    return Answer(status, message, (time.perf_counter() - started) * 1000)


@dataclass
class NoPoller:
    """Queries sent every few seconds after the worker stopped, until one failed fast."""

    tries: list[tuple[float, Answer]]  # (seconds since the worker stopped, answer)

    @property
    def failed_after_s(self) -> float | None:
        return next((t for t, a in self.tries if a.status == "FAILED_PRECONDITION"), None)


async def no_poller(client: Client, workflow_id: str, query_type: str, stopped_at: float, *,
                    try_s: float = 3.0, give_up_s: float = 60.0,
                    on_step: Callable[[], None] | None = None) -> NoPoller:
    """Query (no pending workflow task, no worker) with a deadline of `try_s`, again and again, until the
    server says something other than "timed out", or `give_up_s` after `stopped_at` (a `time.monotonic()`)."""
    tries: list[tuple[float, Answer]] = []
    while time.monotonic() - stopped_at < give_up_s:
        at = time.monotonic() - stopped_at
        answer = await raw_query(client, workflow_id, query_type, timeout=try_s)
        tries.append((round(at, 1), answer))
        if on_step:
            on_step()
        if answer.status != "CANCELLED" and answer.status != "DEADLINE_EXCEEDED":
            break
    return NoPoller(tries)


def said_no_poller(result: NoPoller, try_s: float = 3.0) -> bool:
    """With no worker polling for a while, the server failed the query with FAILED_PRECONDITION "no poller
    seen", before the query's own deadline (it answers one second early), instead of letting it time out.
    False while a worker polls (the query is answered)."""
    last = result.tries[-1][1] if result.tries else None
    return (last is not None and last.status == "FAILED_PRECONDITION" and "no poller" in last.message
            and last.ms < try_s * 1000)


@dataclass
class Held:
    """Queries sent while a workflow task was pending, answered once the worker came back."""

    answers: list[Answer]
    buffered: int = limits.BUFFERED_QUERIES.value

    @property
    def refused(self) -> list[Answer]:
        return [a for a in self.answers if a.status == "RESOURCE_EXHAUSTED"]


async def held_queries(client: Client, workflow_id: str, query_type: str, start_worker: Callable[[], Any], *,
                       n: int = limits.BUFFERED_QUERIES.value + 2, hold_s: float = 20.0) -> Held:
    """Send `n` raw queries one after the other while a workflow task is pending (no worker), then
    `await start_worker()` and collect every answer."""
    calls = []
    for _ in range(n):
        calls.append(asyncio.ensure_future(raw_query(client, workflow_id, query_type, timeout=hold_s)))
        await asyncio.sleep(0.2)  # each reaches the server before the next
    await start_worker()
    return Held(list(await asyncio.gather(*calls)))


def buffer_refused_the_rest(held: Held) -> bool:
    """The server held `limits.BUFFERED_QUERIES` queries (answered when the worker came back) and refused every
    other one at once with RESOURCE_EXHAUSTED. False when no task was pending: then every query is answered."""
    answered = [a for a in held.answers if a.status == "OK"]
    return (len(answered) == held.buffered and len(held.refused) == len(held.answers) - held.buffered
            and all("buffer is full" in a.message for a in held.refused))

