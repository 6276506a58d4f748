"""The measurements: every interaction's latency, throughput, replay, and an overloaded worker (C13).

`run(client, settings)` starts a worker of its own (and, for C13, a starved one), drives each interaction
against the benchmark's workflows (`tutorial.workflows.bench_account`), and returns a `model.Results`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Replayer

from .. import metrics, widgets
from ..errors import explain
from ..polling import Seen, until
from ..worker import WorkerController
from ..workflows import domain
from ..workflows.bench_account import ACTIVITIES, WORKFLOWS, BenchAccount, DepositOnce
from ..workshop import unique
from .model import OVERLOAD_KEYS, THROUGHPUT_KEYS, Latency, Results, Settings, Throughput, machine
from .progress import TerminalProgress, show_phase

OP_TIMEOUT_S = 30.0
OVERLOAD_SLOTS = 2  # max_concurrent_workflow_tasks of the overloaded worker
REPLAY_MIN_EVENTS = 200  # shorter histories measure the replayer's fixed start-up cost, not replay


@dataclass
class _Entity:
    handle: WorkflowHandle
    sent: int = 0  # deposits this client sent (signals, updates); the entity's count catches up


class _Bench:
    """The client side of every interaction, on one worker and one task queue."""

    def __init__(self, client: Client, task_queue: str, prefix: str):
        self.client = client
        self.task_queue = task_queue
        self.prefix = prefix
        self.count = 0
        self.entities: list[_Entity] = []
        self.fresh: list[str] = []  # entities created by update-with-start
        self.last_request_id = ""
        self.first_request_id = ""
        self.queries_after_signal: list[int] = []
        self.describe_namespace = DescribeNamespaceRequest(namespace=client.namespace)

    def new_id(self, kind: str) -> str:
        self.count += 1
        return f"{self.prefix}-{kind}-{self.count}"

    async def new_entity(self, handler_ms: float = 0.0, task_queue: str | None = None) -> _Entity:
        workflow_id = self.new_id("account")
        handle = await self.client.start_workflow(BenchAccount.run, args=[workflow_id, handler_ms], id=workflow_id,
                                                  task_queue=task_queue or self.task_queue)
        entity = _Entity(handle)
        self.entities.append(entity)
        return entity

    async def floor(self, _e: _Entity | None) -> None:
        # retry=True, as the SDK's own calls do: past the server's per-namespace rate limit (the dev server's is
        # a few thousand requests a second) a call is retried with backoff instead of failing
        await self.client.workflow_service.describe_namespace(self.describe_namespace, retry=True)

    async def per_request(self, e: _Entity | None) -> None:
        workflow_id = self.new_id("deposit")
        await self.client.execute_workflow(DepositOnce.run, args=[f"{self.prefix}-db-account", 1], id=workflow_id,
                                           task_queue=self.task_queue)
        self.last_request_id = workflow_id
        self.first_request_id = self.first_request_id or workflow_id

    async def signal(self, e: _Entity) -> None:
        await e.handle.signal(BenchAccount.deposit_signal, 1)
        e.sent += 1

    async def signal_query(self, e: _Entity) -> None:
        await e.handle.signal(BenchAccount.deposit_signal, 1)
        e.sent += 1
        # C11: the first query may not see the signal yet, so the client asks again, at once (interval 0)
        seen = await self.applied(e, interval=0.0)
        self.queries_after_signal.append(seen.queries)

    async def query(self, e: _Entity) -> None:
        await e.handle.query(BenchAccount.state)

    async def update(self, e: _Entity) -> None:
        await e.handle.execute_update(BenchAccount.deposit, 1)
        e.sent += 1

    async def update_with_start(self, _e: _Entity | None) -> None:
        workflow_id = self.new_id("uws")
        start = WithStartWorkflowOperation(BenchAccount.run, args=[workflow_id, 0.0], id=workflow_id,
                                           task_queue=self.task_queue,
                                           id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        self.fresh.append(workflow_id)
        await self.client.execute_update_with_start_workflow(BenchAccount.deposit, 1, start_workflow_operation=start)

    async def applied(self, e: _Entity, interval: float = 0.01) -> Seen:
        """Query the entity until it has applied every deposit sent to it; the `polling.Seen` (`.queries`)."""
        sent = e.sent
        return await until(lambda: e.handle.query(BenchAccount.state), lambda state: state.transactions >= sent,
                           timeout=OP_TIMEOUT_S, interval=interval, max_interval=0.05,
                           gave_up=f"{e.handle.id} did not apply its {sent} deposits")

    async def caught_up(self, e: _Entity) -> int:
        """Wait until the entity has applied every deposit sent; returns its history length then."""
        await self.applied(e)
        return (await e.handle.describe()).history_length

    async def close_all(self) -> None:
        """Close every entity this bench opened and wait until each has finished (the worker must still run)."""
        ids = [e.handle.id for e in self.entities] + self.fresh
        gate = asyncio.Semaphore(32)

        async def close(workflow_id: str) -> None:
            async with gate:
                handle = self.client.get_workflow_handle(workflow_id)
                with contextlib.suppress(Exception):  # already closed, or never started
                    await handle.signal(BenchAccount.close)
                    await asyncio.wait_for(handle.result(), OP_TIMEOUT_S)

        await asyncio.gather(*(close(i) for i in ids))


async def _timed(action: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await asyncio.wait_for(action(), OP_TIMEOUT_S)
    return (time.perf_counter() - started) * 1000


async def _latency(bench: _Bench, key: str, entity: _Entity | None, s: Settings, progress: Any) -> Latency:
    op = getattr(bench, key)
    samples = []
    for i in range(s.warmup + s.n):
        ms = await _timed(lambda: op(entity))
        if i >= s.warmup:
            samples.append(ms)
        progress.step()
    return Latency(key, samples)


async def _helper_pairs(bench: _Bench, entity: _Entity, s: Settings, progress: Any) -> tuple[Latency, Latency]:
    """The same update through `widgets.ActionForm.submit` (parse the field, click, wait, show the result) and
    through the raw SDK, interleaved in alternating order, so both see the same machine at the same moment."""
    async def deposit(amount: int) -> int:
        result = await entity.handle.execute_update(BenchAccount.deposit, amount)
        entity.sent += 1
        return result

    form = widgets.ActionForm("Deposit", {"amount": "1"}, deposit,
                              parse=lambda values: {"amount": domain.parse_amount(values["amount"])})
    raw: list[float] = []
    helper: list[float] = []
    for i in range(s.warmup + s.n):
        pair = {}
        order = ("raw", "helper") if i % 2 == 0 else ("helper", "raw")
        for which in order:
            if which == "raw":
                pair[which] = await _timed(lambda: deposit(1))
            else:
                pair[which] = await _timed(lambda: form.submit(amount="1"))
                if form.last_error is not None:
                    raise form.last_error
        if i >= s.warmup:
            raw.append(pair["raw"])
            helper.append(pair["helper"])
        progress.step(2)
    return Latency("update_raw", raw), Latency("update_helper", helper)


async def _throughput(bench: _Bench, key: str, callers: int, pool: list[_Entity], duration: float) -> Throughput:
    op = getattr(bench, key)
    deadline = time.perf_counter() + duration
    done = 0
    errors: list[BaseException] = []

    async def caller(entity: _Entity) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            try:
                await asyncio.wait_for(op(entity), OP_TIMEOUT_S)
                done += 1
            except Exception as err:  # counted and shown; one failure must not hide the other figures
                errors.append(err)
                if len(errors) > 100:
                    return

    started = time.perf_counter()
    await asyncio.gather(*(caller(pool[i]) for i in range(callers)))
    elapsed = time.perf_counter() - started
    return Throughput(key, callers, done, elapsed, len(errors), explain(errors[0]) if errors else "")


async def _replay(client: Client, handles: list[WorkflowHandle], results: Results, progress: Any) -> None:
    """Fetch histories and time `Replayer.replay_workflow` on each, twice: the work a worker does to rebuild a
    workflow after an eviction. Every replay is kept (`replay_events`, `replay_ms`); the per-1,000-events figures
    come from histories of REPLAY_MIN_EVENTS or more (in shorter ones the replayer's own start-up dominates),
    or from the longest one if none is that long."""
    histories = [await h.fetch_history() for h in handles]
    histories.sort(key=lambda h: len(h.events))
    replayer = Replayer(workflows=WORKFLOWS, runtime=metrics.runtime())
    started = time.perf_counter()
    await replayer.replay_workflow(histories[0])  # warm-up: the sandbox imports the workflow module once
    results.replay_fixed_ms = (time.perf_counter() - started) * 1000
    longest = len(histories[-1].events)
    for history in histories:
        events = len(history.events)
        for _ in range(2):
            started = time.perf_counter()
            await replayer.replay_workflow(history)  # raises if the code no longer matches the history
            ms = (time.perf_counter() - started) * 1000
            results.replay_events.append(events)
            results.replay_ms.append(ms)
            if events >= REPLAY_MIN_EVENTS or events == longest:
                results.replay_ms_per_1000.append(ms * 1000 / events)
                results.replay_per_1000_events.append(events)
        progress.step(2)


async def _overload(client: Client, normal: _Bench, s: Settings, results: Results, progress: Any) -> None:
    """C13: the same interactions on a worker that may run only two workflow tasks at a time, kept busy by
    `overload_entities` entities whose handlers take `overload_handler_ms` each. (With one slot the SDK's
    sticky and normal pollers starve each other: a plain query can time out even with no load at all.)"""
    queue = unique("bench-overloaded")
    worker = WorkerController(client, task_queue=queue, workflows=WORKFLOWS, activities=ACTIVITIES,
                              max_concurrent_workflow_tasks=OVERLOAD_SLOTS)
    bench = _Bench(client, worker.task_queue, normal.prefix + "-ovl")
    await worker.start()
    stop = asyncio.Event()
    load: list[asyncio.Task] = []
    try:
        busy = [await bench.new_entity(handler_ms=s.overload_handler_ms) for _ in range(s.overload_entities)]
        probe = await bench.new_entity()
        await bench.update(probe)

        async def hammer(entity: _Entity) -> None:
            while not stop.is_set():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(bench.update(entity), OP_TIMEOUT_S)

        load = [asyncio.create_task(hammer(e)) for e in busy]
        await asyncio.sleep(0.2)  # let the load build up
        for key in OVERLOAD_KEYS:
            op = getattr(bench, key)
            samples = []
            for _ in range(s.overload_reps):
                samples.append(await _timed(lambda: op(probe)))
                progress.step()
            results.overloaded[key] = Latency(key, samples, note=(
                f"max_concurrent_workflow_tasks={OVERLOAD_SLOTS}, {s.overload_entities} busy entities with "
                f"{s.overload_handler_ms:g} ms handlers"))
    finally:
        stop.set()
        await asyncio.gather(*load, return_exceptions=True)
        if s.cleanup:
            await bench.close_all()
        await worker.stop()


async def run(client: Client, settings: Settings | None = None, *, progress: Any = None,
              target: str = "") -> Results:
    """Measure everything `settings` asks for; `progress` is anything with `step(n)` (widgets.Progress too)."""
    s = settings or Settings()
    progress = progress or TerminalProgress(s.units())
    results = Results(settings=s, target=target, machine=machine())
    started = time.perf_counter()
    prefix = unique("bench")
    worker = WorkerController(client, task_queue=prefix, workflows=WORKFLOWS, activities=ACTIVITIES,
                              max_cached_workflows=5000)
    bench = _Bench(client, worker.task_queue, prefix)
    await worker.start()
    try:
        # ---- latency: one caller, one at a time; a dedicated entity per row, so its events are its own
        show_phase(progress, "latency")
        for key in ("floor", "per_request", "signal", "signal_query", "query", "update", "update_with_start"):
            show_phase(progress, f"latency: {key}")
            entity = await bench.new_entity() if key in ("signal", "signal_query", "query", "update") else None
            before = await bench.caught_up(entity) if entity else 0
            lat = await _latency(bench, key, entity, s, progress)
            ops = s.warmup + s.n
            if entity is not None:
                lat.events_per_op = (await bench.caught_up(entity) - before) / ops
            elif key == "per_request":
                results.request_history_lengths = [
                    (await client.get_workflow_handle(workflow_id).describe()).history_length
                    for workflow_id in (bench.first_request_id, bench.last_request_id)]
                lat.events_per_op = results.request_history_lengths[-1]
                lat.note = "the workflow's whole history: start, activity (the database write), result"
            elif key == "update_with_start":
                lat.events_per_op = (await client.get_workflow_handle(bench.fresh[-1]).describe()).history_length
                lat.note = "a new entity's history after its first update"
            else:
                lat.events_per_op = 0.0
            if key == "signal_query":
                counts = results.signal_queries = list(bench.queries_after_signal)
                lat.note = (f"{sum(counts) / len(counts):.2f} queries per deposit on average; the first query "
                            f"missed the signal {sum(1 for c in counts if c > 1)} of {len(counts)} times")
            if key == "query":
                lat.note = "a query adds nothing to the history"
            results.latency[key] = lat
            metrics.drain()

        show_phase(progress, "latency: helpers vs raw SDK")
        entity = await bench.new_entity()
        before = await bench.caught_up(entity)
        raw, helper = await _helper_pairs(bench, entity, s, progress)
        per_op = (await bench.caught_up(entity) - before) / (2 * (s.warmup + s.n))
        raw.events_per_op = helper.events_per_op = per_op
        results.latency["update_raw"], results.latency["update_helper"] = raw, helper

        # ---- throughput: c callers, each on its own entity, for `duration` seconds
        pool = [await bench.new_entity() for _ in range(max(s.concurrency))]
        await asyncio.gather(*(bench.update(e) for e in pool))  # every entity started and cached
        for key in THROUGHPUT_KEYS:
            for callers in s.concurrency:
                show_phase(progress, f"throughput: {key} x {callers}")
                # every entity has applied what earlier cells sent, so no cell pays for another's backlog
                await asyncio.gather(*(bench.caught_up(e) for e in pool))
                results.throughput[(key, callers)] = await _throughput(bench, key, callers, pool, s.duration)
                progress.step(20)
                metrics.drain()

        # ---- replay time per 1,000 events, on the histories this run made
        show_phase(progress, "replay")
        for e in bench.entities:
            await bench.caught_up(e)
        handles = [e.handle for e in bench.entities if e not in pool] + [e.handle for e in pool[:3]]
        handles.append(client.get_workflow_handle(bench.last_request_id))
        handles.append(client.get_workflow_handle(bench.fresh[-1]))
        await _replay(client, handles, results, progress)

        # ---- C13: the same interactions on an overloaded worker
        if s.overload:
            show_phase(progress, "overloaded worker")
            await _overload(client, bench, s, results, progress)

        if s.cleanup:
            show_phase(progress, "closing entities")
            await bench.close_all()
    finally:
        await worker.stop()
        metrics.drain()
    results.seconds = time.perf_counter() - started
    return results


