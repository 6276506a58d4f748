"""Notebook 04's claims C3-C5 as experiments, and the checks that decide from their results whether a claim held.

Each experiment drives a real worker (`worker.WorkerController`) and the ledger workflow
(`tutorial.workflows.ledger.Ledger`), measures from outside the sandbox (the worker's cache table, the SDK's
cache metrics, the replays seen by the worker's interceptor, the replay trace captured by
`replay.capture_logs()`, the server's history), and returns a frozen result. A check takes a result and answers
True or False; the notebook asserts it, and `tests/test_eviction.py` runs the same experiments in variants
where the claim is false (no restart, a cache big enough, no cache) and shows the check answering False there.

- C3 `stayed_in_cache(deposit_and_query(...))`: while the worker runs, it keeps the workflow; no task replays.
- C4 `cache_lost_workflow(evict(...))`: a restart empties the cache (the history stays whole on the server);
  `each_switch_evicted(alternate(...))`: with a cache too small, every switch throws the other workflow out.
- C5 `replayed_before_answering(next_task(...))`: the next task for an evicted workflow replays its whole
  history, once, before the worker answers, and the rebuilt state equals the state before.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType

from .replay import LogCapture, settle
from .workflows.ledger import Ledger


async def _after(on_task: Callable[[str], Any] | None, label: str) -> None:
    """Run the caller's step hook (a board refresh, or in a test another workflow's task); await it if async."""
    if on_task is not None:
        result = on_task(label)
        if inspect.isawaitable(result):
            await result


# ---------------------------------------------------------------------------------------------------------
# C3: a workflow stays in the cache of a running worker.


@dataclass(frozen=True)
class CacheStay:
    """What a few tasks for one workflow did while its worker kept running (C3)."""

    workflow_id: str
    mark: int  # the log bookmark taken before the first deposit (for `logs.frame(mark, workflow_id)`)
    tasks: int  # deposits sent, plus the query at the end
    cached_after: tuple[str, ...]  # workflow ids in the worker's cache after the last task
    replays: int  # times the worker rebuilt this workflow from history during these tasks
    trace_lines: int  # lines the replay trace wrote for it (it writes only while replaying)
    cache_hits: int  # SDK metric; what usually happens is one hit per task (shown, not asserted)
    balance_before: int
    balance_after: int
    deposited: int
    state: Any  # what the last query answered


def stayed_in_cache(r: CacheStay) -> bool:
    """C3: the worker kept the workflow's state in its cache: after every task the workflow is still cached, no
    task rebuilt it (no replay, no trace line), and the balance moved by exactly what was deposited."""
    return (r.workflow_id in r.cached_after and r.replays == 0 and r.trace_lines == 0
            and r.balance_after == r.balance_before + r.deposited)


async def deposit_and_query(controller, handle, logs: LogCapture, amounts=(10, 20, 30), *,
                            on_task: Callable[[str], Any] | None = None) -> CacheStay:
    """Read the balance, then send each deposit in turn (waiting until the server holds no task for the
    workflow), then query it: `len(amounts) + 1` tasks. `on_task(label)` runs after each (a board refresh; in
    the cache-too-small variant, a task for another workflow)."""
    balance_before = (await handle.query(Ledger.state)).balance
    counters, replays, mark = controller.cache(), controller.replays(handle.id), logs.mark()
    for amount in amounts:
        await handle.signal(Ledger.deposit, amount)
        await settle(handle)
        await _after(on_task, f"deposit {amount}")
    state = await handle.query(Ledger.state)
    await _after(on_task, "query")
    return CacheStay(
        workflow_id=handle.id, mark=mark, tasks=len(amounts) + 1, cached_after=tuple(controller.cached_ids()),
        replays=controller.replays(handle.id) - replays,
        trace_lines=len(logs.since(mark, handle.id, "replay trace")),
        cache_hits=controller.cache().minus(counters).cache_hits,
        balance_before=balance_before, balance_after=state.balance, deposited=sum(amounts), state=state)


# ---------------------------------------------------------------------------------------------------------
# C4: a restart, or a cache too small, evicts the workflow's state.


@dataclass(frozen=True)
class Eviction:
    """The worker's cache and the server's history around one restart (or none, for the variant)."""

    workflow_id: str
    restarted: bool
    cached_before: tuple[str, ...]
    cached_after: tuple[str, ...]
    identity_before: str
    identity_after: str
    history_before: int  # events the server holds for the workflow
    history_after: int


def cache_lost_workflow(e: Eviction) -> bool:
    """C4: the workflow was in the worker's cache before and is not after, while its history on the server is
    whole (no event lost or added): the state left the worker, not Temporal."""
    return (e.workflow_id in e.cached_before and e.workflow_id not in e.cached_after
            and e.history_after == e.history_before)


async def evict(controller, handle, *, restart: bool = True, **changes: Any) -> Eviction:
    """Restart the worker (a graceful shutdown, then a new `Worker`; `changes` as for `controller.restart`), or,
    with `restart=False`, leave it running; record the cache and the history on both sides."""
    cached_before, identity_before = tuple(controller.cached_ids()), controller.identity
    history_before = (await handle.describe()).history_length
    if restart:
        await controller.restart(**changes)
    return Eviction(
        workflow_id=handle.id, restarted=restart, cached_before=cached_before,
        cached_after=tuple(controller.cached_ids()), identity_before=identity_before,
        identity_after=controller.identity, history_before=history_before,
        history_after=(await handle.describe()).history_length)


@dataclass(frozen=True)
class Switch:
    """One deposit in an alternation between workflows: what was cached around it, and what it cost."""

    target: str  # the short name of the workflow the deposit went to
    cached_before: tuple[str, ...]  # short names
    cached_after: tuple[str, ...]
    forced_evictions: int  # SDK metric temporal_sticky_cache_total_forced_eviction, change during this step
    replays: int  # times the target was rebuilt from history during this step


def each_switch_evicted(switches: list[Switch]) -> bool:
    """C4 (a cache too small) and C5: every deposit found its workflow out of the cache, forced another one out
    to make room (one forced eviction), and rebuilt its own by one replay; afterwards only it is cached."""
    return bool(switches) and all(
        s.target not in s.cached_before and s.cached_after == (s.target,) and s.forced_evictions == 1
        and s.replays == 1 for s in switches)


async def alternate(controller, handles: Mapping[str, Any], rounds: int = 3, *,
                    on_task: Callable[[str], Any] | None = None) -> list[Switch]:
    """Deposit 1 into each workflow of `handles` (short name -> handle) in turn, `rounds` times, waiting until
    each deposit is applied; return one `Switch` per deposit."""
    names = {handle.id: name for name, handle in handles.items()}

    def cached() -> tuple[str, ...]:
        return tuple(names.get(wid, wid) for wid in controller.cached_ids())

    switches = []
    for _ in range(rounds):
        for name, handle in handles.items():
            before, counters, replays = cached(), controller.cache(), controller.replays(handle.id)
            await handle.signal(Ledger.deposit, 1)
            await settle(handle)
            switches.append(Switch(name, before, cached(), controller.cache().minus(counters).forced_evictions,
                                   controller.replays(handle.id) - replays))
            await _after(on_task, f"deposit 1 → {name}")
    return switches


# ---------------------------------------------------------------------------------------------------------
# C5: the next task for an evicted workflow replays its history before the worker answers.


@dataclass(frozen=True)
class NextTask:
    """The first task (a query) for a workflow after an eviction, or after none (the variant)."""

    workflow_id: str
    mark: int  # the log bookmark taken just before the query (for `logs.frame(mark, workflow_id)`)
    history_length: int  # events on the server when the query was sent
    signals: int  # WorkflowExecutionSignaled events among them
    state_before: Any  # what a query answered before the eviction
    state_after: Any  # what this query answered
    replays: int  # times the worker rebuilt the workflow while answering
    replayed_up_to: int | None  # the last history event the replay trace reached (None: no trace line)
    replayed_deposits: int  # trace lines of replayed deposit handlers
    live_lines: int  # workflow.logger lines (silent while replaying)
    cache_hits: int  # SDK metric
    ms: float  # what usually happens: how long the answer took


def replayed_before_answering(r: NextTask) -> bool:
    """C5: the next task for an evicted workflow made the worker replay it, once, from its whole history (the
    trace reached the history's last event, one replayed deposit per recorded signal, `workflow.logger` silent)
    before it answered, and the answer equals the state before the eviction."""
    return (r.replays == 1 and r.replayed_up_to == r.history_length and r.replayed_deposits == r.signals
            and r.live_lines == 0 and r.state_after == r.state_before)


async def next_task(controller, handle, logs: LogCapture, state_before: Any, *,
                    on_task: Callable[[str], Any] | None = None) -> NextTask:
    """Query the workflow (a task the worker must answer with the workflow's state) and record what it took."""
    history_length = (await handle.describe()).history_length
    counters, replays, mark = controller.cache(), controller.replays(handle.id), logs.mark()
    started = time.perf_counter()
    state_after = await handle.query(Ledger.state)
    ms = (time.perf_counter() - started) * 1000
    await _after(on_task, "query")
    trace = logs.since(mark, handle.id, "replay trace")
    events = (await handle.fetch_history()).events
    return NextTask(
        workflow_id=handle.id, mark=mark, history_length=history_length,
        signals=sum(1 for e in events[:history_length]
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
        state_before=state_before, state_after=state_after, replays=controller.replays(handle.id) - replays,
        replayed_up_to=max((line.history_length or 0 for line in trace), default=None),
        replayed_deposits=sum(1 for line in trace if line.text.startswith("replaying: deposit")),
        live_lines=len(logs.since(mark, handle.id, "workflow.logger")),
        cache_hits=controller.cache().minus(counters).cache_hits, ms=ms)
