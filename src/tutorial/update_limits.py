"""Notebook 05's per-run message limits, shown live (C15: update-based entities need continue-as-new too).

A run counts more than events. The server also caps the updates one run may receive (`history.maxTotalUpdates`),
the updates in flight at once (`history.maxInFlightUpdates`) and the signals one run may receive
(`history.maximumSignalsPerExecution`); the numbers are in `tutorial.limits`. The real caps are far too big for
a notebook, so `lowered_server` starts a *separate* dev server with lowered caps and a worker on it, and
stops both when the block ends. On it:

* `update_cap_experiment`: a teller sends updates one after the other. `ThresholdOnlyAccount` (continues-as-new
  on its own event threshold only) meets the refusal past the cap; `SafeAccount` continues-as-new when the
  server suggests it (at 90% of the cap) and loses nothing. Checks: `refused_past_the_cap`,
  `continued_as_new_when_suggested`, `lost_nothing_past_the_update_cap`.
* `in_flight_cap_experiment`: one update more than may be in flight; `in_flight_cap_held`.
* `signal_cap_experiment`: signals past the signal cap; `signals_refused_past_the_cap`.

`measure_costs` and `what_ends_a_run_first` turn measured events per message into the table of which limit a
run meets first, with the real numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import Input, Meta, Request, WaitPolicy
from temporalio.api.workflowservice.v1 import UpdateWorkflowExecutionRequest
from temporalio.client import WorkflowUpdateStage
from temporalio.service import RPCError

from . import limits, server
from .continue_as_new import Audit, RunInfo, audit, new_account, run_chain, short_error, wait_until_idle
from .worker import WorkerController
from .workflows import long_lived_account
from .workflows.domain import Transaction
from .workflows.long_lived_account import EntityStatus, SafeAccount
from .workshop import unique

SUGGEST_RATIO = 0.9  # history.maxTotalUpdates.suggestContinueAsNewThreshold (server default)
TOTAL_CAP_MESSAGE = "limit on the total number of distinct updates"
IN_FLIGHT_MESSAGE = "in-flight updates"
SIGNAL_CAP_MESSAGE = "limit for signal"
MEASURED_LONG_RULE = 10_000  # the entity's own rule in the experiment: "continue-as-new every 10,000 events"


@dataclass(frozen=True)
class Lowered:
    """The caps of the demo server (the real ones are in `tutorial.limits`)."""

    total_updates: int = 10
    in_flight: int = 3
    signals: int = 30

    def dynamic_config(self) -> dict[str, int]:
        return {limits.UPDATES_PER_RUN.key: self.total_updates, limits.UPDATES_IN_FLIGHT.key: self.in_flight,
                limits.SIGNALS_PER_RUN.key: self.signals}

    @property
    def suggested_after(self) -> int:
        """Updates a run accepts before the server suggests continue-as-new: ceil(cap x 90%)."""
        return math.ceil(self.total_updates * SUGGEST_RATIO)


@dataclass
class LoweredServer:
    """A running demo server with lowered caps, a client for it and a worker on that client."""

    caps: Lowered
    client: Any
    worker: WorkerController
    address: str
    pid: int | None  # the demo server's process
    started_in: float


@contextlib.asynccontextmanager
async def lowered_server(caps: Lowered = Lowered()) -> AsyncIterator[LoweredServer]:
    """Start a separate dev server with `caps`, connect, start a worker for notebook 05's workflows; on leaving
    the block (also after an error) stop the worker, then the server. The kernel's own server is untouched."""
    started = time.perf_counter()
    embedded = server.EmbeddedServer(dynamic_config=caps.dynamic_config())
    worker: WorkerController | None = None
    try:
        info = await embedded.start()
        client = await server.connect_to(info)
        worker = WorkerController(client, task_queue=unique("nb05-lowered"), workflows=long_lived_account.WORKFLOWS,
                                  activities=long_lived_account.ACTIVITIES)
        await worker.start()
        yield LoweredServer(caps=caps, client=client, worker=worker, address=info.address, pid=info.pid,
                            started_in=time.perf_counter() - started)
    finally:
        if worker is not None:
            await worker.stop()
        embedded.stop()


def _code(err: BaseException) -> str | None:
    for candidate in (err, err.__cause__):
        if isinstance(candidate, RPCError):
            return candidate.status.name
    return None


# ---------------------------------------------------------------------------------------------------------
# The update cap: refused past it, suggested before it
# ---------------------------------------------------------------------------------------------------------


@dataclass
class CapStep:
    """One update of the experiment, and the entity's status just before it."""

    n: int
    run_number: int  # the run current just before this update
    events_before: int
    suggested_before: bool  # is_continue_as_new_suggested(), as the entity saw it before this update
    balance: int | None  # the update's answer, or None if refused
    error: str | None = None
    code: str | None = None  # the RPC status of a refusal


@dataclass
class UpdateCap:
    entity: str
    cap: int
    suggested_after: int  # ceil(cap x 90%)
    steps: list[CapStep]
    audit: Audit
    runs: list[RunInfo]
    final_balance: int
    expected_balance: int  # every update applied once
    seconds: float

    @property
    def refused(self) -> list[CapStep]:
        return [s for s in self.steps if s.error is not None]

    @property
    def events_per_update(self) -> float:
        """Events one update added, from the first run's steps (the history grows by the same amount each)."""
        first = [s for s in self.steps if s.run_number == 1 and s.error is None]
        return (first[-1].events_before - first[0].events_before) / max(1, len(first) - 1)

    def applied_when_first_suggested(self) -> int | None:
        """Updates applied in run 1 when the entity first saw the suggestion (None: it never did)."""
        seen = next((s for s in self.steps if s.suggested_before and s.run_number == 1), None)
        return None if seen is None else sum(1 for s in self.steps[:seen.n - 1] if s.error is None)

    def figures(self) -> dict[str, Any]:
        return {"entity": self.entity, "updates sent": len(self.steps), "refused": len(self.refused),
                "runs": len(self.runs), "updates per run": [r.updates_accepted for r in self.runs],
                "suggested after": self.applied_when_first_suggested(), **self.audit.row(),
                "balance": self.final_balance, "expected": self.expected_balance,
                "events per update": round(self.events_per_update, 1)}


async def update_cap_experiment(lowered: LoweredServer, entity: type, updates: int, *,
                                on_sent: Callable[[], None] | None = None) -> UpdateCap:
    """A teller sends `updates` deposits one after the other (`deposit_now`, a synchronous update) to a fresh
    `entity` whose own rule is "continue-as-new every 10,000 events"; the status is read before each one."""
    started = time.perf_counter()
    client, task_queue = lowered.client, lowered.worker.task_queue
    workflow_id = unique(f"nb05-cap-{entity.__name__.lower()}")
    handle = await client.start_workflow(entity.run, new_account(workflow_id[-40:], 0, max_events=MEASURED_LONG_RULE),
                                         id=workflow_id, task_queue=task_queue)
    sent = [Transaction("deposit", 1, f"{workflow_id[-8:]}-t{n}") for n in range(1, updates + 1)]
    steps: list[CapStep] = []
    for n, txn in enumerate(sent, start=1):
        status = await handle.query(SafeAccount.status)
        step = CapStep(n=n, run_number=status.run_number, events_before=status.history_length,
                       suggested_before=status.continue_as_new_suggested, balance=None)
        try:
            step.balance = await handle.execute_update(SafeAccount.deposit_now, txn, id=txn.request_id)
        except Exception as err:  # noqa: BLE001 - a refusal is what we measure
            step.error, step.code = short_error(err), _code(err)
        steps.append(step)
        if on_sent:
            on_sent()
    await wait_until_idle(handle)
    await handle.signal(SafeAccount.close_account)
    final = await handle.result()
    return UpdateCap(entity=entity.__name__, cap=lowered.caps.total_updates,
                     suggested_after=lowered.caps.suggested_after, steps=steps,
                     audit=audit(sent, list(final.applied)), runs=await run_chain(client, workflow_id),
                     final_balance=final.balance, expected_balance=len(sent), seconds=time.perf_counter() - started)


def refused_past_the_cap(r: UpdateCap) -> bool:
    """C15, the need: in a run that does not continue-as-new, the server accepted exactly `cap` updates, refused
    every later one with its "limit on the total number of distinct updates" error, and had suggested
    continue-as-new before it (at 90% of the cap). False for an entity that continued-as-new in time."""
    accepted = [s for s in r.steps if s.error is None]
    return (len(r.steps) > r.cap and len(accepted) == r.cap and r.steps[:r.cap] == accepted
            and all(TOTAL_CAP_MESSAGE in (s.error or "") for s in r.refused)
            and r.applied_when_first_suggested() == r.suggested_after)


def continued_as_new_when_suggested(r: UpdateCap) -> bool:
    """C15: every run but the last closed after accepting ceil(90% of the cap) updates: the entity continued-as-new
    on the server's suggestion, long before its own 10,000-event rule (the history had ~50 events)."""
    closed = [run for run in r.runs if run.closed_by == "continued as new"]
    return (len(closed) >= 1 and all(run.updates_accepted == r.suggested_after for run in closed)
            and all(run.events < MEASURED_LONG_RULE for run in r.runs))


def lost_nothing_past_the_update_cap(r: UpdateCap) -> bool:
    """C15, the remedy: more updates than one run may take were all answered and applied exactly once, across
    at least two runs, and no run went over the cap. False for `ThresholdOnlyAccount` (updates refused)."""
    a = r.audit
    return (len(r.steps) > r.cap and not r.refused and a.processed == a.sent == len(r.steps) and a.lost == 0
            and a.duplicated == 0 and r.final_balance == r.expected_balance and len(r.runs) >= 2
            and all(run.updates_accepted <= r.cap for run in r.runs))


# ---------------------------------------------------------------------------------------------------------
# The in-flight cap and the signal cap
# ---------------------------------------------------------------------------------------------------------


@dataclass
class InFlightCap:
    cap: int
    post_seconds: float
    raw_code: str | None  # the server's answer to one update more, sent without the SDK's retries
    raw_message: str
    sdk_balance: int | None  # the same update through the SDK (which retries RESOURCE_EXHAUSTED)
    sdk_seconds: float
    answers: list[int]  # the `cap` updates in flight
    first_completed_event: int  # event id of the first UpdateCompleted among the `cap`
    extra_accepted_event: int  # event id of the extra update's UpdateAccepted


async def _raw_update(client, workflow_id: str, update_id: str, txn: Transaction) -> None:
    """UpdateWorkflowExecution straight to the server, waiting for acceptance, with no retry."""
    request = UpdateWorkflowExecutionRequest(
        namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=workflow_id),
        request=Request(meta=Meta(update_id=update_id, identity="nb05-raw"), input=Input(name="withdraw")),
        wait_policy=WaitPolicy(lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.
                               UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED))
    request.request.input.args.payloads.extend(await client.data_converter.encode([txn]))
    await client.workflow_service.update_workflow_execution(request, retry=False)


async def in_flight_cap_experiment(lowered: LoweredServer, *, post_seconds: float = 2.0) -> InFlightCap:
    """Fill the in-flight cap with withdrawals that take `post_seconds` to post, then send one more: first as a
    bare RPC (the server's answer), then through the SDK (what a caller sees)."""
    client, cap = lowered.client, lowered.caps.in_flight
    workflow_id = unique("nb05-inflight-cap")
    handle = await client.start_workflow(SafeAccount.run, new_account(workflow_id[-40:], 100, max_events=0,
                                                                      post_seconds=post_seconds),
                                         id=workflow_id, task_queue=lowered.worker.task_queue)
    txns = [Transaction("withdraw", 1, f"{workflow_id[-8:]}-atm{i}") for i in range(cap + 1)]
    pending = await asyncio.gather(*(handle.start_update(SafeAccount.withdraw, t, id=t.request_id,
                                                         wait_for_stage=WorkflowUpdateStage.ACCEPTED)
                                     for t in txns[:cap]))
    extra = txns[cap]
    raw_code, raw_message = None, "accepted"
    try:
        await _raw_update(client, workflow_id, extra.request_id, extra)
    except RPCError as err:
        raw_code, raw_message = err.status.name, err.message
    started = time.perf_counter()
    sdk_balance = await handle.execute_update(SafeAccount.withdraw, extra, id=extra.request_id)
    sdk_seconds = time.perf_counter() - started
    answers = [await p.result() for p in pending]
    events = list((await handle.fetch_history()).events)
    completed = [e.event_id for e in events if e.HasField("workflow_execution_update_completed_event_attributes")
                 and e.workflow_execution_update_completed_event_attributes.meta.update_id != extra.request_id]
    accepted = [e.event_id for e in events if e.HasField("workflow_execution_update_accepted_event_attributes")
                and e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
                == extra.request_id]
    await handle.signal(SafeAccount.close_account)
    await handle.result()
    return InFlightCap(cap=cap, post_seconds=post_seconds, raw_code=raw_code, raw_message=raw_message,
                       sdk_balance=sdk_balance, sdk_seconds=sdk_seconds, answers=answers,
                       first_completed_event=min(completed, default=0), extra_accepted_event=min(accepted, default=0))


def in_flight_cap_held(r: InFlightCap) -> bool:
    """The in-flight cap: with `cap` updates running, the server refused one more (RESOURCE_EXHAUSTED), and the
    SDK's retry got it in only after one of them completed (history order: UpdateCompleted, then its
    UpdateAccepted). Every caller was answered in the end."""
    return (r.raw_code == "RESOURCE_EXHAUSTED" and IN_FLIGHT_MESSAGE in r.raw_message and r.sdk_balance is not None
            and len(r.answers) == r.cap and 0 < r.first_completed_event < r.extra_accepted_event)


@dataclass
class SignalCap:
    cap: int
    sent: int
    refused: list[str] = field(default_factory=list)
    codes: set[str | None] = field(default_factory=set)
    status: EntityStatus | None = None


async def signal_cap_experiment(lowered: LoweredServer, extra: int = 3,
                                on_sent: Callable[[], None] | None = None) -> SignalCap:
    """Send `cap + extra` deposits (signals) one after the other to a fresh SafeAccount, then read its status."""
    client, cap = lowered.client, lowered.caps.signals
    workflow_id = unique("nb05-signal-cap")
    handle = await client.start_workflow(SafeAccount.run, new_account(workflow_id[-40:], 0, max_events=0),
                                         id=workflow_id, task_queue=lowered.worker.task_queue)
    result = SignalCap(cap=cap, sent=cap + extra)
    for n in range(cap + extra):
        try:
            await handle.signal(SafeAccount.deposit, Transaction("deposit", 1, f"s{n}"))
        except Exception as err:  # noqa: BLE001 - a refusal is what we measure
            result.refused.append(short_error(err))
            result.codes.add(_code(err))
        if on_sent:
            on_sent()
    result.status = await wait_until_idle(handle)
    await handle.terminate("the signal cap is reached: a close_account signal would be refused too")
    return result


def signals_refused_past_the_cap(r: SignalCap) -> bool:
    """A run takes `cap` signals: every one after it was refused at its sender, the first `cap` were applied."""
    return (len(r.refused) == r.sent - r.cap > 0 and all(SIGNAL_CAP_MESSAGE in e for e in r.refused)
            and r.status is not None and r.status.balance == r.cap and r.status.run_number == 1)


# ---------------------------------------------------------------------------------------------------------
# What a message costs, and which limit ends a run first
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageCost:
    kind: str
    cap: limits.Limit  # the per-run cap on this kind of message
    events: float  # events one message adds, measured
    bytes: float


async def measure_costs(client, task_queue: str, n: int = 8) -> list[MessageCost]:
    """Events and bytes per message, measured on a fresh SafeAccount: `n` of each kind, one after the other."""
    workflow_id = unique("nb05-costs")
    handle = await client.start_workflow(SafeAccount.run, new_account(workflow_id[-40:], 1_000, max_events=0),
                                         id=workflow_id, task_queue=task_queue)
    kinds: list[tuple[str, limits.Limit, Callable[[int], Any]]] = [
        ("signal (deposit)", limits.SIGNALS_PER_RUN,
         lambda i: handle.signal(SafeAccount.deposit, Transaction("deposit", 1, f"c-s{i}"))),
        ("update (deposit_now)", limits.UPDATES_PER_RUN,
         lambda i: handle.execute_update(SafeAccount.deposit_now, Transaction("deposit", 1, f"c-u{i}"))),
        ("update awaiting an activity (withdraw)", limits.UPDATES_PER_RUN,
         lambda i: handle.execute_update(SafeAccount.withdraw, Transaction("withdraw", 1, f"c-w{i}"))),
    ]
    costs = []
    for kind, cap, send in kinds:
        before = await wait_until_idle(handle)
        for i in range(n):
            await send(i)
            await wait_until_idle(handle)
        after = await wait_until_idle(handle)
        costs.append(MessageCost(kind, cap, (after.history_length - before.history_length) / n,
                                 (after.history_size - before.history_size) / n))
    await handle.signal(SafeAccount.close_account)
    await handle.result()
    return costs


def what_ends_a_run_first(cost: MessageCost) -> dict[str, Any]:
    """With the real limits: after how many such messages (one after the other) a run is told, warned, refused
    or terminated, and which of the last two comes first."""
    per_events = limits.HISTORY_EVENTS_SUGGEST.value / cost.events
    per_bytes = limits.HISTORY_BYTES_SUGGEST.value / cost.bytes
    suggest = {"4,096 events": per_events, "4 MB": per_bytes}
    if cost.cap is limits.UPDATES_PER_RUN:
        suggest["90% of the update cap"] = math.ceil(cost.cap.value * SUGGEST_RATIO)
    by, at = min(suggest.items(), key=lambda item: item[1])
    terminated = min(limits.HISTORY_EVENTS_MAX.value / cost.events, limits.HISTORY_BYTES_MAX.value / cost.bytes)
    ends = "refused by the cap" if cost.cap.value < terminated else "terminated by the history limit"
    return {"message": cost.kind, "events each": round(cost.events, 1), "bytes each": round(cost.bytes),
            "continue-as-new suggested after": f"{int(at):,} ({by})",
            "events warning after": f"{int(limits.HISTORY_EVENTS_WARN.value / cost.events):,}",
            "refused after": f"{cost.cap.value:,} ({cost.cap.key})",
            "terminated after": f"{int(terminated):,}", "what ends the run first": ends}
