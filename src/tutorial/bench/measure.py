"""The measurements: every interaction's latency, throughput, replay, and an overloaded worker (C13).

`run(client, settings)` starts a worker of its own (and, for C13, a starved one), drives each interaction
against the benchmark's workflows (`tutorial.workflows.bench_account`), and returns a `model.Results`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Replayer

from .. import metrics, round_trips, widgets
from ..errors import explain
from ..polling import Seen, until
from ..worker import WorkerController
from ..workflows import domain
from ..workflows.bench_account import ACTIVITIES, WORKFLOWS, BenchAccount, DepositOnce
from ..workshop import unique
from .model import (BACK_TO_BACK, OVERLOAD_KEYS, PACED, PACED_KEYS, SETTLE_KEYS, THROUGHPUT_KEYS, Latency,
                    Results, Settings, Throughput, machine)
from .progress import TerminalProgress, show_phase

OP_TIMEOUT_S = 30.0
OVERLOAD_SLOTS = 2  # max_concurrent_workflow_tasks of the overloaded worker
REPLAY_MIN_EVENTS = 200  # shorter histories measure the replayer's fixed start-up cost, not replay
ROUND_TRIP_KEYS = ("per_request", "signal", "signal_query", "update", "update_with_start")  # they write events
ROUND_TRIPS = 10  # the last this many round trips of each row are split into their parts (`round_trips`)
ENTITY_KEYS = ("signal", "signal_query", "query", "update")  # rows on an entity of their own
REFILL_S = 1.0  # idle before the paced rows: the read limit's bucket (20 reads, 20 a second) is full again
# a caller only a little faster than the limit spends the bucket slowly (at 25 calls a second, 5 reads a second);
# one slower than it never does, and is not paced by it anyway
SETTLE_MAX_S = 8.0
SETTLE_BATCH = 10  # after `settle` calls, check every this many whether the read limit holds the calls now
SETTLE_LOOK = 5  # that many last calls split from the history (`round_trips`): each waited SETTLE_WAIT_MS in a queue
SETTLE_WAIT_MS = 15.0
# the transfer-queue reads one call needs while the limit has reads to give (new workflow tasks, an activity, a
# close): from a full bucket, the calls have spent it once they needed more than it saved up and refilled
READS_PER_CALL = {"per_request": 4, "signal_query": 1}


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
        self.settled: dict[str, int] = {}  # untimed settling calls before each back-to-back row
        self.paced: list[_Entity] = []  # the paced rows' entities (not replayed: the latency rows' are)
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


async def _round_trip(bench: _Bench, key: str, entity: _Entity | None) -> tuple[float, round_trips.Trip]:
    """One call of `key`, timed, and its `round_trips.Trip` (the wall clock the history's timestamps share)."""
    op = getattr(bench, key)
    sent = time.time()
    ms = await _timed(lambda: op(entity))
    seen = time.time()
    workflow_id = (bench.last_request_id if key == "per_request" else bench.fresh[-1] if key == "update_with_start"
                   else entity.handle.id if entity is not None else "")
    return ms, round_trips.Trip(key, workflow_id, sent, seen)


async def _settle(bench: _Bench, key: str, entity: _Entity | None, s: Settings, progress: Any) -> int:
    """Untimed back-to-back calls of `key` until the server's read limit is in its steady state: at least
    `settle`, then batches of SETTLE_BATCH until either they have needed more reads than a full bucket could give
    since they began (`round_trips.READ_LIMIT_BURST` saved up, `READ_LIMIT_PER_S` refilled), or each of the
    last SETTLE_LOOK calls' tasks waited for it in a queue (split from the history: an earlier row had already
    spent the bucket), or for SETTLE_MAX_S. Returns the calls."""
    if not s.settle or key not in SETTLE_KEYS:
        return 0
    started = time.perf_counter()
    trips: list[round_trips.Trip] = []
    while True:
        for _ in range(s.settle if not trips else SETTLE_BATCH):
            trips.append((await _round_trip(bench, key, entity))[1])
            if len(trips) <= s.settle:
                progress.step()
        elapsed = time.perf_counter() - started
        supplied = round_trips.READ_LIMIT_BURST + round_trips.READ_LIMIT_PER_S * elapsed
        if READS_PER_CALL[key] * len(trips) > supplied or elapsed > SETTLE_MAX_S:
            return len(trips)
        last = await round_trips.breakdown(bench.client, {("settle", key): trips[-SETTLE_LOOK:]})
        if min(p.stages["in a queue"] for p in last[("settle", key)].parts) >= SETTLE_WAIT_MS:
            return len(trips)


async def _latency(bench: _Bench, key: str, entity: _Entity | None, s: Settings, progress: Any,
                   results: Results) -> Latency:
    """`key` back to back: untimed calls (warm-up, and `_settle` for SETTLE_KEYS), then `n` timed ones."""
    settled = await _settle(bench, key, entity, s, progress)
    untimed = s.warmup
    samples, trips = [], []
    for i in range(untimed + s.n):
        ms, trip = await _round_trip(bench, key, entity)
        if i >= untimed:
            samples.append(ms)
            trips.append(trip)
        progress.step()
    bench.settled[key] = results.settled[key] = settled
    if key in ROUND_TRIP_KEYS:
        results.trips[(BACK_TO_BACK, key)] = trips[-ROUND_TRIPS:]
    return Latency(key, samples)


async def _paced(bench: _Bench, s: Settings, progress: Any, results: Results) -> None:
    """Every PACED_KEYS interaction `paced_n` times, the way a user clicks: before each call a pause drawn at
    random from `pause_ms`, the interactions in a new shuffled order every round, each entity its own."""
    rng = random.Random(s.seed)
    entities = {key: await bench.new_entity() if key in ENTITY_KEYS else None for key in PACED_KEYS}
    bench.paced = [e for e in entities.values() if e is not None]  # their histories repeat the latency rows'
    for entity in entities.values():
        if entity is not None:
            await bench.caught_up(entity)
    await asyncio.sleep(REFILL_S)
    samples: dict[str, list[float]] = {key: [] for key in PACED_KEYS}
    trips: dict[str, list[round_trips.Trip]] = {key: [] for key in PACED_KEYS}
    for _ in range(s.paced_n):
        order = list(PACED_KEYS)
        rng.shuffle(order)
        for key in order:
            await asyncio.sleep(rng.uniform(*s.pause_ms) / 1000)
            ms, trip = await _round_trip(bench, key, entities[key])
            samples[key].append(ms)
            trips[key].append(trip)
            progress.step()
    low, high = s.pause_ms
    for key in PACED_KEYS:
        results.paced[key] = Latency(key, samples[key], note=f"each after a pause of {low:g}-{high:g} ms at random")
        if key in ROUND_TRIP_KEYS:
            results.trips[(PACED, key)] = trips[key][-ROUND_TRIPS:]


async def _helper_pairs(bench: _Bench, entity: _Entity, s: Settings, progress: Any) -> tuple[Latency, Latency]:
    """The same update through `widgets.ActionForm.submit` (parse the field, click, wait, show the result) and
    through the raw SDK, interleaved in alternating order, so both see the same machine at the same moment.
    The helper row's `own_ms`: each click's time outside the update itself (the widget kit's own work)."""
    inside: list[float] = []

    async def deposit(amount: int) -> int:
        started = time.perf_counter()
        result = await entity.handle.execute_update(BenchAccount.deposit, amount)
        entity.sent += 1
        inside.append((time.perf_counter() - started) * 1000)
        return result

    form = widgets.ActionForm("Deposit", {"amount": "1"}, deposit,
                              parse=lambda values: {"amount": domain.parse_amount(values["amount"])})
    raw: list[float] = []
    helper: list[float] = []
    own: list[float] = []
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
                pair["own"] = pair[which] - inside[-1]
        if i >= s.warmup:
            raw.append(pair["raw"])
            helper.append(pair["helper"])
            own.append(pair["own"])
        progress.step(2)
    return Latency("update_raw", raw), Latency("update_helper", helper, own_ms=own)


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
        # ---- latency, paced: one caller, pauses between calls as between clicks (what the decision table uses)
        if s.paced_n:
            show_phase(progress, "latency: paced")
            await _paced(bench, s, progress, results)
        # ---- latency, back to back: one caller, one at a time; a dedicated entity per row, so its events are its own
        show_phase(progress, "latency")
        for key in ("floor", "per_request", "signal", "signal_query", "query", "update", "update_with_start"):
            show_phase(progress, f"latency: {key}")
            entity = await bench.new_entity() if key in ENTITY_KEYS else None
            before = await bench.caught_up(entity) if entity else 0
            lat = await _latency(bench, key, entity, s, progress, results)
            ops = s.warmup + s.n + bench.settled.get(key, 0)
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
                counts = results.signal_queries = bench.queries_after_signal[-ops:]  # this row's deposits
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

        # ---- where each round trip's time went: the history's timestamps beside the client's clock
        show_phase(progress, "round trips")
        results.round_trips = await round_trips.breakdown(client, results.trips)

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
        handles = [e.handle for e in bench.entities if e not in pool and e not in bench.paced]
        handles += [e.handle for e in pool[:3]]
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




async def split_round_trips(client: Client, keys: tuple[str, ...] = ("signal_query", "update"), *, n: int = 8,
                            settle: int = 30, paced: bool = False) -> dict[str, round_trips.Breakdown]:
    """Only the round trips of `keys` (ROUND_TRIP_KEYS), back to back after `settle` untimed calls (or `paced`:
    a pause of PAUSE_MS before each), on a worker of their own: key -> `round_trips.Breakdown`. What the tests'
    counterfactuals run against a server with another read limit."""
    s = Settings(n=n, warmup=0, settle=settle, paced_n=n)
    prefix = unique("bench-trips")
    worker = WorkerController(client, task_queue=prefix, workflows=WORKFLOWS, activities=ACTIVITIES)
    bench = _Bench(client, worker.task_queue, prefix)
    results = Results(settings=s)
    quiet = TerminalProgress(1, stream=open(os.devnull, "w"))
    await worker.start()
    try:
        rng = random.Random()
        for key in keys:
            entity = await bench.new_entity() if key in ENTITY_KEYS else None
            if entity is not None:
                await bench.caught_up(entity)
            if not paced:
                await _latency(bench, key, entity, s, quiet, results)
                continue
            trips = []
            for _ in range(n):
                await asyncio.sleep(rng.uniform(*s.pause_ms) / 1000)
                trips.append((await _round_trip(bench, key, entity))[1])
            results.trips[(PACED, key)] = trips
        split = await round_trips.breakdown(client, results.trips)
        await bench.close_all()
    finally:
        quiet.stream.close()
        await worker.stop()
    return {key: b for (_rhythm, key), b in split.items()}


async def paired_clicks(client: Client, *, n: int, warmup: int) -> tuple[Latency, Latency]:
    """Only the helpers' pairs (raw SDK update, the same update through a form click), on a worker and an entity
    of their own: what `clicks.in_kernel` runs inside a Jupyter kernel."""
    s = Settings(n=n, warmup=warmup)
    prefix = unique("bench-clicks")
    worker = WorkerController(client, task_queue=prefix, workflows=WORKFLOWS, activities=ACTIVITIES)
    bench = _Bench(client, worker.task_queue, prefix)
    await worker.start()
    try:
        entity = await bench.new_entity()
        await bench.caught_up(entity)
        with open(os.devnull, "w") as quiet:
            pairs = await _helper_pairs(bench, entity, s, TerminalProgress(1, stream=quiet))
        await bench.close_all()
    finally:
        await worker.stop()
    return pairs
