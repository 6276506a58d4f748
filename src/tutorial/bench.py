"""Measure every way a client talks to a workflow, side by side, in one run: `python -m tutorial.bench`.

Against the embedded dev server (or ``TEMPORAL_ADDRESS``), with a worker inside this process, it measures:

- **latency**, one caller at a time, after a warm-up: the floor (a bare gRPC round trip, DescribeNamespace);
  workflow-per-request start + result; signal accepted; signal then query until visible; query; update;
  update-with-start (a new entity each time); and the same update through the workbook's helpers
  (`widgets.ActionForm.submit`, what every notebook's form does) and through the raw SDK, interleaved, so the
  helpers' cost is a ratio measured in the same seconds;
- **throughput** of each interaction with 1, 8 and 64 concurrent callers (each caller on its own entity);
- **history events** each interaction adds, and **replay** time per 1,000 events (`temporalio.worker.Replayer`
  on histories fetched from the server);
- **an overloaded worker** (C13): the same update and signal-then-query on a worker that runs one workflow task
  at a time while busy entities with slow handlers keep it occupied.

It prints p50 and p95 and each figure as a ratio to the floor, writes ``results.csv`` and ``results.png`` to
``--out`` (default ``build/bench``), and shows a progress line on stderr. Notebook 06 runs a short version of
the same measurement through `run(client, Settings(...), progress=widgets.Progress(...))`.

The workflows are `bench_workflows.py`: the shapes of notebooks 01-03, kept minimal so this measures
Temporal, not the lesson code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Replayer

from . import metrics, server
from .workflows import domain
from .bench_workflows import ACTIVITIES, WORKFLOWS, BenchAccount, DepositOnce
from .errors import explain
from .worker import WorkerController
from .workshop import unique

OP_TIMEOUT_S = 30.0
HELPER_LIMIT = 1.10  # the workbook's helpers may add at most 10% to an update
HISTORY_WARN_EVENTS = 10_240  # the server warns from here; the hard limit is 51,200 events (C7)
HISTORY_LIMIT_EVENTS = 51_200
OVERLOAD_SLOTS = 2  # max_concurrent_workflow_tasks of the overloaded worker
REPLAY_MIN_EVENTS = 200  # shorter histories measure the replayer's fixed start-up cost, not replay

# key -> label, in the order they are printed. Every key is one latency row; THROUGHPUT_KEYS also get
# one row per number of callers.
LABELS = {
    "floor": "floor: bare gRPC round trip (DescribeNamespace)",
    "per_request": "workflow-per-request: start + result",
    "signal": "signal accepted",
    "signal_query": "signal, then query until visible",
    "query": "query",
    "update": "update (result returned)",
    "update_with_start": "update-with-start (new entity)",
    "update_raw": "update via raw SDK (paired)",
    "update_helper": "update via ActionForm.submit (paired)",
}
SHORT = {  # the chart's labels
    "floor": "floor (DescribeNamespace)",
    "per_request": "per-request: start + result",
    "signal": "signal accepted",
    "signal_query": "signal, query until visible",
    "query": "query",
    "update": "update",
    "update_with_start": "update-with-start",
    "update_raw": "update, raw SDK (paired)",
    "update_helper": "update, ActionForm (paired)",
}
EVENT_LABELS = {"per_request": "per-\nrequest", "signal": "signal", "signal_query": "signal\n+ query",
                "query": "query", "update": "update", "update_with_start": "update-\nwith-start"}
THROUGHPUT_KEYS = ("floor", "per_request", "signal", "signal_query", "query", "update", "update_with_start")
OVERLOAD_KEYS = ("update", "signal_query")
CSV_FIELDS = ("section", "key", "interaction", "callers", "n", "p50_ms", "p95_ms", "p50_x_floor", "p95_x_floor",
              "ops_per_s", "x_floor", "events_per_op", "note")


@dataclass
class Settings:
    """What to measure and how much. The defaults are the command's; notebook 06 uses smaller ones."""

    n: int = 50  # timed repetitions per latency row
    warmup: int = 5  # untimed repetitions before them
    concurrency: tuple[int, ...] = (1, 8, 64)
    duration: float = 1.0  # seconds per throughput cell
    overload: bool = True
    overload_reps: int = 10  # timed repetitions per overloaded row (each takes a few hundred ms)
    overload_entities: int = 8  # busy entities hammering the overloaded worker
    overload_handler_ms: float = 5.0  # how long each of their handlers takes
    cleanup: bool = True  # close every entity at the end (leave nothing running on a shared cluster)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, not {self.n}")
        if self.warmup < 0:
            raise ValueError(f"warm-up must be 0 or more, not {self.warmup}")
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise ValueError(f"concurrency must be whole numbers of at least 1, not {self.concurrency}")
        if self.overload_reps < 1:
            raise ValueError(f"overload_reps must be at least 1, not {self.overload_reps}")
        if self.duration <= 0:
            raise ValueError(f"duration must be positive, not {self.duration}")
        self.concurrency = tuple(sorted(set(self.concurrency)))

    def units(self) -> int:
        """Progress units: one per latency repetition, 20 per throughput cell, one per overloaded repetition,
        two per replayed history."""
        reps = self.warmup + self.n
        latency = reps * (len(LABELS) - 2) + 2 * reps
        overload = len(OVERLOAD_KEYS) * self.overload_reps if self.overload else 0
        return latency + 20 * len(THROUGHPUT_KEYS) * len(self.concurrency) + overload + 2 * 12


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), linear interpolation between the two nearest values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Latency:
    key: str
    samples_ms: list[float]
    events_per_op: float | None = None
    note: str = ""

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.samples_ms, 95)


@dataclass
class Throughput:
    key: str
    callers: int
    ops: int
    seconds: float
    errors: int = 0
    first_error: str = ""

    @property
    def per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Results:
    """Everything one run measured, with the figures a notebook asserts on."""

    settings: Settings
    target: str = ""
    latency: dict[str, Latency] = field(default_factory=dict)
    throughput: dict[tuple[str, int], Throughput] = field(default_factory=dict)
    replay_ms_per_1000: list[float] = field(default_factory=list)
    replay_events: list[int] = field(default_factory=list)
    replay_ms: list[float] = field(default_factory=list)  # one per replay, beside its history's length
    replay_per_1000_events: list[int] = field(default_factory=list)  # lengths behind replay_ms_per_1000
    replay_fixed_ms: float = 0.0  # one replay of the shortest history: mostly the replayer's start-up
    overloaded: dict[str, Latency] = field(default_factory=dict)
    signal_queries: list[int] = field(default_factory=list)  # queries each measured deposit needed to be seen
    request_history_lengths: list[int] = field(default_factory=list)  # first and last measured request's events
    seconds: float = 0.0

    @property
    def floor_ms(self) -> float:
        return self.latency["floor"].p50

    def x_floor(self, ms: float) -> float:
        return ms / self.floor_ms if self.floor_ms > 0 else float("nan")

    @property
    def helper_ratio(self) -> float:
        """p50 of the update through the workbook's helpers over p50 of the same update through the raw SDK."""
        return self.latency["update_helper"].p50 / self.latency["update_raw"].p50

    @property
    def helper_paired_overhead_ms(self) -> float:
        """Median of (helper - raw) over interleaved pairs, in ms: what the helpers add, with drift cancelled."""
        raw, helper = self.latency["update_raw"].samples_ms, self.latency["update_helper"].samples_ms
        return percentile([h - r for h, r in zip(helper, raw)], 50)

    @property
    def helper_paired_overhead(self) -> float:
        """The paired overhead as a fraction of the raw update's p50."""
        return self.helper_paired_overhead_ms / self.latency["update_raw"].p50

    @property
    def replay_p50(self) -> float:
        return percentile(self.replay_ms_per_1000, 50)

    @property
    def replay_p95(self) -> float:
        return percentile(self.replay_ms_per_1000, 95)

    def overload_ratio(self, key: str) -> float:
        """How many times slower the interaction's p50 is on the overloaded worker."""
        return self.overloaded[key].p50 / self.latency[key].p50

    def rows(self) -> list[dict[str, Any]]:
        """One dict per figure, the CSV's rows."""
        rows: list[dict[str, Any]] = []

        def latency_row(section: str, lat: Latency, label: str, note: str = "") -> dict[str, Any]:
            return {"section": section, "key": lat.key, "interaction": label, "callers": 1,
                    "n": len(lat.samples_ms), "p50_ms": round(lat.p50, 3), "p95_ms": round(lat.p95, 3),
                    "p50_x_floor": round(self.x_floor(lat.p50), 2), "p95_x_floor": round(self.x_floor(lat.p95), 2),
                    "ops_per_s": "", "x_floor": round(self.x_floor(lat.p50), 2),
                    "events_per_op": "" if lat.events_per_op is None else round(lat.events_per_op, 2),
                    "note": note or lat.note}

        for key, lat in self.latency.items():
            rows.append(latency_row("latency", lat, LABELS[key]))
        for (key, callers), tp in self.throughput.items():
            floor = self.throughput.get(("floor", callers))
            x = floor.per_s / tp.per_s if floor and tp.per_s else float("nan")
            note = f"{tp.errors} errors: {tp.first_error}" if tp.errors else ""
            rows.append({"section": "throughput", "key": key, "interaction": LABELS[key], "callers": callers,
                         "n": tp.ops, "p50_ms": "", "p95_ms": "", "p50_x_floor": "", "p95_x_floor": "",
                         "ops_per_s": round(tp.per_s, 1), "x_floor": round(x, 2), "events_per_op": "",
                         "note": note})
        rows.append({"section": "helpers", "key": "helper_ratio", "interaction": "ActionForm.submit / raw SDK (p50)",
                     "callers": 1, "n": len(self.latency["update_helper"].samples_ms), "p50_ms": "", "p95_ms": "",
                     "p50_x_floor": "", "p95_x_floor": "", "ops_per_s": "", "x_floor": round(self.helper_ratio, 3),
                     "events_per_op": "",
                     "note": f"paired median overhead {self.helper_paired_overhead:+.1%}; limit {HELPER_LIMIT - 1:.0%}"})
        if self.replay_ms_per_1000:
            rows.append({"section": "replay", "key": "replay", "interaction": "replay, ms per 1,000 events",
                         "callers": 1, "n": len(self.replay_ms_per_1000), "p50_ms": round(self.replay_p50, 2),
                         "p95_ms": round(self.replay_p95, 2),
                         "p50_x_floor": round(self.x_floor(self.replay_p50), 2),
                         "p95_x_floor": round(self.x_floor(self.replay_p95), 2), "ops_per_s": "",
                         "x_floor": round(self.x_floor(self.replay_p50), 2), "events_per_op": "",
                         "note": f"histories of {min(self.replay_per_1000_events)}-"
                                 f"{max(self.replay_per_1000_events)} events, each replayed twice, start-up "
                                 f"included; the shortest ({min(self.replay_events)} events) took "
                                 f"{min(self.replay_ms):.0f} ms"})
        for key, lat in self.overloaded.items():
            row = latency_row("overloaded", lat, f"{LABELS[key]} · overloaded worker",
                              f"{self.overload_ratio(key):.1f}x the normal worker's p50")
            rows.append(row)
        return rows

    def frame(self):
        """The rows as a pandas DataFrame (for notebooks)."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=list(CSV_FIELDS))


# ------------------------------------------------------------------------------------------ progress


class TerminalProgress:
    """A one-line progress bar on stderr (redrawn in place on a terminal, a line per phase otherwise)."""

    def __init__(self, total: int, description: str = "bench", stream=None):
        self.total = max(1, total)
        self.done = 0
        self.phase = ""
        self.description = description
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.perf_counter()
        self._drawn = 0.0

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        if not self.tty:
            print(f"{self.description}: {phase} ({time.perf_counter() - self.started:.0f} s)", file=self.stream)
        self._draw(force=True)

    def step(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.tty or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        share = min(1.0, self.done / self.total)
        bar = "#" * int(share * 30)
        line = f"\r{self.description} [{bar:<30}] {share:4.0%} {now - self.started:5.1f} s  {self.phase}"
        self.stream.write(line[:110].ljust(110))
        self.stream.flush()

    def finish(self, text: str = "") -> None:
        self.done = self.total
        if self.tty:
            self._draw(force=True)
            self.stream.write("\n")
        if text:
            print(text, file=self.stream)


def _phase(progress: Any, text: str) -> None:
    if hasattr(progress, "set_phase"):
        progress.set_phase(text)
    elif hasattr(progress, "bar"):  # widgets.Progress: show the phase in the bar's description
        progress.bar.description = text[:20]


# ------------------------------------------------------------------------------------------ the interactions


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
        queries = 1
        while (await e.handle.query(BenchAccount.state)).transactions < e.sent:
            queries += 1  # C11: the first query may not see the signal yet, so the client asks again
        self.queries_after_signal.append(queries)

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

    async def caught_up(self, e: _Entity) -> int:
        """Wait until the entity has applied every deposit sent; returns its history length then."""
        deadline = time.monotonic() + OP_TIMEOUT_S
        while (await e.handle.query(BenchAccount.state)).transactions < e.sent:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{e.handle.id} did not apply its {e.sent} deposits in {OP_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.01)
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


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


async def _helper_pairs(bench: _Bench, entity: _Entity, s: Settings, progress: Any) -> tuple[Latency, Latency]:
    """The same update through `widgets.ActionForm.submit` (parse the field, click, wait, show the result) and
    through the raw SDK, interleaved in alternating order, so both see the same machine at the same moment."""
    from . import widgets

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
    results = Results(settings=s, target=target)
    started = time.perf_counter()
    prefix = unique("bench")
    worker = WorkerController(client, task_queue=prefix, workflows=WORKFLOWS, activities=ACTIVITIES,
                              max_cached_workflows=5000)
    bench = _Bench(client, worker.task_queue, prefix)
    await worker.start()
    try:
        # ---- latency: one caller, one at a time; a dedicated entity per row, so its events are its own
        _phase(progress, "latency")
        for key in ("floor", "per_request", "signal", "signal_query", "query", "update", "update_with_start"):
            _phase(progress, f"latency: {key}")
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

        _phase(progress, "latency: helpers vs raw SDK")
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
                _phase(progress, f"throughput: {key} x {callers}")
                # every entity has applied what earlier cells sent, so no cell pays for another's backlog
                await asyncio.gather(*(bench.caught_up(e) for e in pool))
                results.throughput[(key, callers)] = await _throughput(bench, key, callers, pool, s.duration)
                progress.step(20)
                metrics.drain()

        # ---- replay time per 1,000 events, on the histories this run made
        _phase(progress, "replay")
        for e in bench.entities:
            await bench.caught_up(e)
        handles = [e.handle for e in bench.entities if e not in pool] + [e.handle for e in pool[:3]]
        handles.append(client.get_workflow_handle(bench.last_request_id))
        handles.append(client.get_workflow_handle(bench.fresh[-1]))
        await _replay(client, handles, results, progress)

        # ---- C13: the same interactions on an overloaded worker
        if s.overload:
            _phase(progress, "overloaded worker")
            await _overload(client, bench, s, results, progress)

        if s.cleanup:
            _phase(progress, "closing entities")
            await bench.close_all()
    finally:
        await worker.stop()
        metrics.drain()
    results.seconds = time.perf_counter() - started
    return results


# ------------------------------------------------------------------------------------------ choosing a pattern

PATTERNS = {
    "workflow-per-request + database": {
        "seed: advantages": "short workflows, so changing workflow code is easy (C6); never meets the history "
                            "limit (C7)",
        "seed: disadvantages": "the entity's status lives in a separate database: send the request, update the "
                               "db, reply (C8)",
        "use it when": "requests are independent and the state belongs in a database other systems read; "
                       "you change the workflow code often; each request may cost a whole workflow",
    },
    "entity: signal + query": {
        "seed: advantages": "timers, cancellation; runs for ever; the workflow is the source of truth (C10)",
        "seed: disadvantages": "asynchronous: a query right after a signal may not see it, so ask again (C11); "
                               "needs continue-as-new (C12); worker load delays it (C13)",
        "use it when": "callers fire and forget (the cheapest write to accept) and readers can wait a moment; "
                       "the entity needs timers or cancellation",
    },
    "entity: update (+ update-with-start)": {
        "seed: advantages": "synchronous: changes state and returns the result (C14); timers, runs for ever, "
                            "source of truth",
        "seed: disadvantages": "needs continue-as-new (C15); worker load delays it (C13)",
        "use it when": "the caller needs the result or a rejection now (validators keep bad requests out of "
                       "the history); update-with-start creates the entity on first use",
    },
    "long-lived entity + continue-as-new": {
        "seed: advantages": "keeps the history, and the replay after every eviction, short for an entity that "
                            "lives for ever",
        "seed: disadvantages": "must handle pending signals and updates before continuing as new (C12, C15)",
        "use it when": "always, for an entity of either kind that lives long: continue well before the warning",
    },
}


def decision_table(results: Results):
    """The seed's advantages and disadvantages of each pattern beside this run's figures (a DataFrame)."""
    import pandas as pd

    r = results
    lat = r.latency
    top = r.settings.concurrency[-1]

    def ms(key: str) -> str:
        return f"{lat[key].p50:.1f} ms ({r.x_floor(lat[key].p50):.0f}x floor)"

    def per_s(key: str) -> str:
        return f"{r.throughput[(key, top)].per_s:.0f}/s" if (key, top) in r.throughput else "not measured"

    def changes_until_warning(key: str) -> str:
        events = lat[key].events_per_op or 0
        return f"{HISTORY_WARN_EVENTS / events:,.0f}" if events else "never"

    def replay_at(events: float) -> str:
        return f"{r.replay_p50 * events / 1000:,.0f} ms" if r.replay_ms_per_1000 else "not measured"

    def overload(key: str) -> str:
        return f"{r.overload_ratio(key):.1f}x slower" if key in r.overloaded else "not measured"

    per_request_events = lat["per_request"].events_per_op or 0
    measured = {
        "workflow-per-request + database": {
            "a change (p50)": ms("per_request"),
            "a read (p50)": "a database read (not a Temporal call)",
            f"changes/s, {top} callers": per_s("per_request"),
            "history events per change": f"{per_request_events:.0f} in a new workflow each time",
            "changes until the 10,240-event warning": "never: every request starts a fresh history",
            "replay after an eviction": replay_at(per_request_events) + " (one short history)",
            "on an overloaded worker": "not measured here (two workflow tasks and an activity per request)",
        },
        "entity: signal + query": {
            "a change (p50)": f"accepted {ms('signal')}; visible {ms('signal_query')}",
            "a read (p50)": ms("query"),
            f"changes/s, {top} callers": f"accepted {per_s('signal')}; visible {per_s('signal_query')}",
            "history events per change": f"{lat['signal_query'].events_per_op or 0:.1f}",
            "changes until the 10,240-event warning": changes_until_warning("signal_query"),
            "replay after an eviction": f"{replay_at(HISTORY_WARN_EVENTS)} at the warning",
            "on an overloaded worker": overload("signal_query"),
        },
        "entity: update (+ update-with-start)": {
            "a change (p50)": f"{ms('update')}; with start {ms('update_with_start')}",
            "a read (p50)": ms("query"),
            f"changes/s, {top} callers": per_s("update"),
            "history events per change": f"{lat['update'].events_per_op or 0:.1f}",
            "changes until the 10,240-event warning": changes_until_warning("update"),
            "replay after an eviction": f"{replay_at(HISTORY_WARN_EVENTS)} at the warning",
            "on an overloaded worker": overload("update"),
        },
        "long-lived entity + continue-as-new": {
            "a change (p50)": "as the entity it wraps",
            "a read (p50)": ms("query"),
            f"changes/s, {top} callers": "as the entity it wraps",
            "history events per change": "as the entity; reset to a handful at each new run",
            "changes until the 10,240-event warning": "never, if it continues as new in time",
            "replay after an eviction": f"at most {replay_at(4096)} (continuing at the server's 4,096-event hint)",
            "on an overloaded worker": "as the entity it wraps",
        },
    }
    rows = [{"pattern": name, **measured[name], **PATTERNS[name]} for name in PATTERNS]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ output


def report(results: Results) -> str:
    """The results as text: latency, throughput, helpers, replay, overload."""
    r = results
    lines = [f"Temporal interactions, measured side by side ({r.target or 'server'}; N={r.settings.n}, "
             f"warm-up {r.settings.warmup})", ""]
    lines.append(f"{'latency, one caller':<52}{'p50 ms':>9}{'p95 ms':>9}{'p50 x floor':>13}{'p95 x floor':>13}"
                 f"{'events/op':>11}")
    for key, lat in r.latency.items():
        events = "" if lat.events_per_op is None else f"{lat.events_per_op:.1f}"
        lines.append(f"{LABELS[key]:<52}{lat.p50:>9.2f}{lat.p95:>9.2f}{r.x_floor(lat.p50):>13.1f}"
                     f"{r.x_floor(lat.p95):>13.1f}{events:>11}")
    for key in ("signal_query", "per_request", "update_with_start"):
        if key in r.latency and r.latency[key].note:
            lines.append(f"  {key}: {r.latency[key].note}")
    lines.append("")
    callers = r.settings.concurrency
    head = "".join(f"{f'{c} caller' + ('s' if c > 1 else ''):>13}" for c in callers)
    lines.append(f"{'throughput, operations per second':<52}{head}{f'x floor @{callers[-1]}':>14}")
    for key in THROUGHPUT_KEYS:
        cells = "".join(f"{r.throughput[(key, c)].per_s:>13.1f}" for c in callers)
        last = r.throughput[(key, callers[-1])]
        floor = r.throughput[("floor", callers[-1])]
        x = floor.per_s / last.per_s if last.per_s else float("nan")
        errors = f"  ({sum(r.throughput[(key, c)].errors for c in callers)} errors)" if any(
            r.throughput[(key, c)].errors for c in callers) else ""
        lines.append(f"{LABELS[key]:<52}{cells}{x:>14.1f}{errors}")
    lines.append("")
    # the verdict uses the paired median: each pair ran at the same moment, so the machine's drift cancels out
    verdict = ("under" if r.helper_paired_overhead < HELPER_LIMIT - 1 else "OVER") + \
        f" the {HELPER_LIMIT - 1:.0%} budget"
    lines.append(f"helpers: update via ActionForm.submit p50 {r.latency['update_helper'].p50:.2f} ms, raw SDK "
                 f"{r.latency['update_raw'].p50:.2f} ms (ratio of p50s {r.helper_ratio:.3f}); the helpers add "
                 f"{r.helper_paired_overhead_ms:+.2f} ms = {r.helper_paired_overhead:+.1%} (median of "
                 f"{len(r.latency['update_raw'].samples_ms)} interleaved pairs): {verdict}")
    if r.replay_ms_per_1000:
        lines.append(f"replay: p50 {r.replay_p50:.1f} ms per 1,000 events (p95 {r.replay_p95:.1f}), "
                     f"{len(r.replay_ms_per_1000)} replays of histories of {min(r.replay_per_1000_events)}-"
                     f"{max(r.replay_per_1000_events)} events; the shortest history ({min(r.replay_events)} events) "
                     f"took {min(r.replay_ms):.0f} ms")
    for key, lat in r.overloaded.items():
        lines.append(f"overloaded worker: {LABELS[key]} p50 {lat.p50:.1f} ms, p95 {lat.p95:.1f} ms: "
                     f"{r.overload_ratio(key):.1f}x the normal worker ({lat.note})")
    return "\n".join(lines)


def write_csv(results: Results, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(results.rows())
    return path


def chart(results: Results):
    """Three panels: latency p50/p95 (log scale, x floor), throughput by callers, history events per op."""
    import matplotlib

    if not _in_kernel():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = results
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 6.8), gridspec_kw={"width_ratios": [1.4, 1.0, 0.8]})
    keys = list(r.latency) + [f"ovl:{k}" for k in r.overloaded]
    labels = [SHORT[k] if not k.startswith("ovl:") else f"{SHORT[k[4:]]}, OVERLOADED" for k in keys]
    lats = [r.latency[k] if not k.startswith("ovl:") else r.overloaded[k[4:]] for k in keys]
    y = list(range(len(keys)))[::-1]
    colours = ["#d62728" if k.startswith("ovl:") else "#1f77b4" for k in keys]
    ax1.barh([v + 0.2 for v in y], [lat.p50 for lat in lats], height=0.4, color=colours, label="p50")
    ax1.barh([v - 0.2 for v in y], [lat.p95 for lat in lats], height=0.4, color="#c7c7c7", label="p95")
    for v, lat in zip(y, lats):
        ax1.annotate(f"{lat.p50:.1f} ms = {r.x_floor(lat.p50):.0f}x floor", (max(lat.p50, lat.p95), v),
                     xytext=(4, -3), textcoords="offset points", fontsize=8)
    ax1.set_yticks(y, labels, fontsize=8)
    ax1.set_xscale("log")
    ax1.set_xlabel("milliseconds, one caller at a time (log scale)")
    ax1.set_title("Latency: p50 (coloured) and p95 (grey)")
    ax1.set_xlim(min(lat.p50 for lat in lats) / 2, max(lat.p95 for lat in lats) * 40)
    ax1.grid(axis="x", alpha=0.3)

    callers = r.settings.concurrency
    for key in THROUGHPUT_KEYS:
        ax2.plot(callers, [r.throughput[(key, c)].per_s for c in callers], marker="o", label=SHORT[key])
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log")
    ax2.set_xticks(callers, [str(c) for c in callers])
    ax2.set_xlabel("concurrent callers (each on its own entity)")
    ax2.set_ylabel("operations per second (log scale)")
    ax2.set_title("Throughput")
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    ax2.grid(alpha=0.3)

    event_keys = [k for k in ("per_request", "signal", "signal_query", "query", "update", "update_with_start")
                  if k in r.latency]
    events = [r.latency[k].events_per_op or 0 for k in event_keys]
    ax3.bar(range(len(event_keys)), events, color="#9467bd")
    for i, e in enumerate(events):
        ax3.annotate(f"{e:.1f}", (i, e), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    ax3.set_xticks(range(len(event_keys)), [EVENT_LABELS[k] for k in event_keys], fontsize=8)
    ax3.set_ylabel("history events added per interaction")
    title = "History events per interaction"
    if r.replay_ms_per_1000:
        title += f"\nreplay: {r.replay_p50:.0f} ms per 1,000 events (p50)"
    ax3.set_title(title)
    ax3.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Temporal interactions side by side · {r.target} · N={r.settings.n} · {machine()}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def write_png(results: Results, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig = chart(results)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------ the command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(minimum: int):
    """An argparse type: a whole number no smaller than `minimum`, with a one-line reason otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _callers(text: str) -> tuple[int, ...]:
    try:
        return tuple(_positive_int(part) for part in text.split(",") if part.strip())
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"a comma-separated list of callers, each {err}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 60 seconds, not {value:g}")
    return value


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m tutorial.bench",
                description="Measure every way a client talks to a Temporal workflow, side by side, against the "
                            "embedded dev server (or TEMPORAL_ADDRESS).")
    p.add_argument("-n", "--repeat", type=_positive_int, default=Settings.n, metavar="N",
                   help=f"timed repetitions per latency row (default {Settings.n})")
    p.add_argument("--warmup", type=_non_negative_int, default=Settings.warmup, metavar="W",
                   help=f"untimed repetitions before them (default {Settings.warmup})")
    p.add_argument("--concurrency", type=_callers, default=Settings.concurrency, metavar="C,C,...",
                   help="concurrent callers for the throughput rows (default 1,8,64)")
    p.add_argument("--duration", type=_seconds, default=Settings.duration, metavar="SECONDS",
                   help=f"seconds per throughput measurement (default {Settings.duration:g})")
    p.add_argument("--no-overload", action="store_true",
                   help="skip the overloaded-worker rows (C13; they repeat N/5 times, at least 3, at most 10)")
    p.add_argument("--out", type=Path, default=Path("build/bench"), metavar="DIR",
                   help="where results.csv and results.png go (default build/bench)")
    return p


def machine() -> str:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu or 'unknown CPU'}, Python {platform.python_version()}"


async def _main(args: argparse.Namespace) -> int:
    settings = Settings(n=args.repeat, warmup=args.warmup, concurrency=args.concurrency, duration=args.duration,
                        overload=not args.no_overload, overload_reps=max(3, min(10, args.repeat // 5)))
    wall = time.perf_counter()
    progress = TerminalProgress(settings.units())
    try:
        already = server.server_info()
    except server.WorkbookError:
        already = None
    client = await server.connect(quiet=True)
    info = server.server_info()
    owned = info.embedded and already is None  # stop only a server this command started
    settings.cleanup = not owned  # a server we stop takes its workflows with it
    target = f"{'embedded dev server' if info.embedded else 'server'} {info.address}"
    try:
        results = await run(client, settings, progress=progress, target=target)
    finally:
        if owned:
            server.stop_server()
    csv_path = write_csv(results, args.out / "results.csv")
    png_path = write_png(results, args.out / "results.png")
    progress.finish()
    print(report(results))
    print(f"\nmachine: {machine()}")
    print(f"wrote {csv_path} and {png_path}; whole run {time.perf_counter() - wall:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command; returns the exit status (0 ok, 1 the run failed, 2 bad options)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help (0) or a bad option (2, its one-line message already printed)
        return int(done.code or 0)
    newline = "\n" if sys.stderr.isatty() else ""  # end the progress line first
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        print(f"{newline}bench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # WorkbookError (server down, no binary) and anything Temporal raised
        print(f"{newline}bench: error: {explain(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
