"""Notebook 04's lesson helpers: what the worker's cache and its replays do, measured from outside the sandbox.

The workflow is `tutorial.workflows.ledger` (`Ledger` and its later versions `LedgerV2`, `LedgerV3`). Here:
capture what it logs (`capture_logs`), wait until a task is done (`settle`), run the exercise's sequence of tasks
through a small cache (`run_sequence`), measure what a replay costs as the history grows (`replay_cost`), and
export a history and replay it against a version of the code with the SDK's `Replayer`, with a clear message for
a bad history file (`export_history`, `load_history`, `replay_history`), a new run of the patched code is
`tutorial.patching`. Claims C3-C5 are `tutorial.eviction`; the live board is
`tutorial.boards`, the cost chart `tutorial.charts.replay`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import _Definition

from . import metrics
from .errors import WorkbookError
from .polling import until
from .worker import WorkerController
from .workflows.ledger import TRACE_LOGGER, WORKFLOW_LOGGER, Ledger
from .workshop import state_dir, unique

# ---------------------------------------------------------------------------------------------------------
# What the workflow said: capture both loggers, so a cell can compare them.


@dataclass(frozen=True)
class LogLine:
    """One line logged from inside a workflow."""

    source: str  # "workflow.logger" (replay-safe) or "replay trace" (plain logger, guarded by is_replaying)
    workflow_id: str
    text: str
    history_length: int | None  # for the trace: how far into the history the replay had got


class LogCapture(logging.Handler):
    """Collects what `workflow.logger` and the replay trace write, in order, for every workflow."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[LogLine] = []

    def emit(self, record: logging.LogRecord) -> None:  # runs on the worker's workflow thread
        if record.name == TRACE_LOGGER:
            source, workflow_id = "replay trace", str(getattr(record, "workflow_id", ""))
        else:
            source = "workflow.logger"
            workflow_id = str((getattr(record, "temporal_workflow", None) or {}).get("workflow_id", ""))
        text = re.sub(r" \(\{.*\}\)$", "", record.getMessage())  # drop the workflow info the SDK appends
        self.lines.append(LogLine(source, workflow_id, text, getattr(record, "history_length", None)))

    def mark(self) -> int:
        """A bookmark: pass it to `since` to get only what was logged after this moment."""
        return len(self.lines)

    def since(self, mark: int = 0, workflow_id: str | None = None, source: str | None = None) -> list[LogLine]:
        return [line for line in self.lines[mark:]
                if workflow_id in (None, line.workflow_id) and source in (None, line.source)]

    def frame(self, mark: int = 0, workflow_id: str | None = None) -> pd.DataFrame:
        rows = [{"source": line.source, "text": line.text,
                 "replayed up to event": line.history_length if line.history_length is not None else ""}
                for line in self.since(mark, workflow_id)]
        return pd.DataFrame(rows, columns=["source", "text", "replayed up to event"])


_capture: LogCapture | None = None


def capture_logs() -> LogCapture:
    """Start capturing both loggers at INFO (once per process; later calls return the same capture)."""
    global _capture
    if _capture is None:
        _capture = LogCapture()
        for name in (WORKFLOW_LOGGER, TRACE_LOGGER):
            logger = logging.getLogger(name)
            logger.setLevel(logging.INFO)
            logger.addHandler(_capture)
    return _capture


# ---------------------------------------------------------------------------------------------------------
# Waiting until a task is done (asks the server, so it moves nothing in the worker's cache).

async def settle(handle, timeout: float = 20.0) -> int:
    """Wait until the server holds no workflow task for `handle` (every signal sent so far has been applied by a
    worker); return the history length. Asks the server (`describe`), never the worker, so it moves no cache.
    Raises `polling.GaveUp` (a WorkbookError) after `timeout` seconds."""
    seen = await until(handle.describe,
                       lambda description: not description.raw_description.HasField("pending_workflow_task"),
                       timeout=timeout, interval=0.01, max_interval=0.05,
                       gave_up=f"{handle.id} still has a workflow task waiting: is the worker running?")
    return seen.value.history_length


# ---------------------------------------------------------------------------------------------------------
# The exercise's experiment: a sequence of tasks for workflows A, B, C... through a worker with a small cache.

async def run_sequence(client, sequence: str, cache_size: int, *, task_queue: str = "nb04-sequence") -> dict[str, Any]:
    """Send one workflow task per letter of `sequence` (the first time a letter appears, the workflow starts;
    afterwards it gets a deposit), one task at a time, through a fresh worker whose cache holds `cache_size`
    workflows. Returns the replays and forced evictions measured, and the final balances."""
    letters = (sequence or "").strip().upper()
    if not letters or not letters.isalpha():
        raise ValueError(f"a sequence is letters naming workflows, like 'ABAB', not {sequence!r}")
    if cache_size < 1:
        raise ValueError("cache_size must be at least 1 (with 0 every task, even a query, replays)")
    controller = WorkerController(client, task_queue=unique(task_queue), workflows=[Ledger],
                                  max_cached_workflows=cache_size)
    handles: dict[str, Any] = {}
    await controller.start()
    try:
        before = controller.cache()
        for letter in letters:
            if letter not in handles:
                handles[letter] = await client.start_workflow(
                    Ledger.run, letter, id=unique(f"nb04-seq-{letter}"), task_queue=controller.task_queue)
            else:
                await handles[letter].signal(Ledger.deposit, 1)
            await settle(handles[letter])
        delta = controller.cache().minus(before)
        balances = {letter: (await handle.query(Ledger.state)).balance for letter, handle in handles.items()}
    finally:
        for handle in handles.values():
            try:
                await handle.terminate("sequence measured")
            except Exception:
                pass
        await controller.stop()
    return {"sequence": letters, "cache size": cache_size, "replays": delta.replays,
            "forced evictions": delta.forced_evictions, "balances": balances}


# ---------------------------------------------------------------------------------------------------------
# What a replay costs: task latency with and without the cache, as the history grows.

async def grow_history(handle, target: int, batch: int = 50) -> int:
    """Deposit 1 at a time, `batch` signals at once, until the history has at least `target` events.

    A batch stays under the server's limit of 100 buffered events per workflow task (more, and the server
    fails the running task to flush them, which costs a replay)."""
    length = await settle(handle)
    while length < target:
        count = max(1, min(batch, (target - length) // 2))
        await asyncio.gather(*(handle.signal(Ledger.deposit, 1) for _ in range(count)))
        length = await settle(handle)
    return length


def task_latencies_ms(events, last: int) -> list[float]:
    """Milliseconds from WorkflowTaskStarted to WorkflowTaskCompleted for the last `last` workflow tasks: the
    time the worker spent on each (fetching and replaying history included), as the server recorded it."""
    started: dict[int, Any] = {}
    spans: list[float] = []
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            started[event.event_id] = event.event_time.ToDatetime()
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            began = started.get(event.workflow_task_completed_event_attributes.started_event_id)
            if began is not None:
                spans.append((event.event_time.ToDatetime() - began).total_seconds() * 1000)
    return spans[-last:]


async def replay_cost(client, sizes=(20, 200, 1000, 2000), samples: int = 3, progress=None) -> pd.DataFrame:
    """Task latency at each history size, with the worker cache and with `max_cached_workflows=0`.

    One ledger grows through the sizes (deposits sent 50 at a time). At each size, `samples` deposits are
    timed through a worker with a cache; then the worker restarts with no cache and `samples` more deposits are
    timed, each one replaying the whole history; then the cache comes back for the next size. Returns a
    DataFrame, one row per size: the median milliseconds per workflow task (`charts.replay.cost_chart`), and what
    the worker did, counted rather than timed: replays with and without the cache, the history before the last
    uncached task (its length, its last WorkflowTaskStarted) and the last event the replay trace reached in that
    task (see
    `uncached_tasks_replayed_whole_history`)."""
    logs = capture_logs()
    controller = WorkerController(client, task_queue=unique("nb04-cost"), workflows=[Ledger], max_cached_workflows=100)
    rows = []

    async def timed_deposits() -> tuple[float, int, int, int]:
        """Median ms per task; the history length before the last deposit; the last WorkflowTaskStarted among
        those events (the last task the history recorded before it); the trace's reach in the last task."""
        for _ in range(samples):
            before, mark = await settle(handle, timeout=60), logs.mark()
            await handle.signal(Ledger.deposit, 1)
            await settle(handle, timeout=60)
        reach = max((line.history_length or 0 for line in logs.since(mark, handle.id, "replay trace")), default=0)
        events = (await handle.fetch_history()).events
        last_task = max(e.event_id for e in events
                        if e.event_id <= before and e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED)
        return statistics.median(task_latencies_ms(events, samples)), before, last_task, reach

    await controller.start()
    handle = await client.start_workflow(Ledger.run, "cost", id=unique("nb04-cost"), task_queue=controller.task_queue)
    try:
        for size in sorted(sizes):
            if controller.settings.max_cached_workflows == 0:
                await controller.restart(max_cached_workflows=100)
                await handle.query(Ledger.state)  # rebuild it into the new cache now, before anything is counted
            events = await grow_history(handle, size)
            replays_before = controller.replays(handle.id)
            with_cache, _, _, cached_reach = await timed_deposits()
            replays_cached = controller.replays(handle.id) - replays_before
            await controller.restart(max_cached_workflows=0)
            replays_before = controller.replays(handle.id)
            without_cache, last_length, last_task, reach = await timed_deposits()
            rows.append({"history events": events, "with cache (ms per task)": with_cache,
                         "no cache (ms per task)": without_cache,
                         "replays with cache": replays_cached, "replays": controller.replays(handle.id) - replays_before,
                         "history before last task": last_length, "its last task started at": last_task,
                         "replay reached event": reach,
                         "replay reached event (cached)": cached_reach})
            if progress is not None:
                progress.step()
    finally:
        try:
            await handle.terminate("replay cost measured")
        except Exception:
            pass
        await controller.stop()
    frame = pd.DataFrame(rows)
    frame["times slower"] = frame["no cache (ms per task)"] / frame["with cache (ms per task)"]
    return frame.round(1)


def uncached_tasks_replayed_whole_history(cost: pd.DataFrame, samples: int) -> bool:
    """What a replay costs, counted: with the cache no task replayed (the trace stayed silent); with
    `max_cached_workflows=0` every one of the `samples` tasks at every size replayed, and the last one re-ran every
    workflow task the history had recorded (the trace reached the last WorkflowTaskStarted before it). So the work
    per uncached task grows with the history; the milliseconds show what that usually costs."""
    return bool(len(cost)) and all(
        row["replays with cache"] == 0 and row["replay reached event (cached)"] == 0 and row["replays"] == samples
        and row["replay reached event"] >= row["its last task started at"] for _, row in cost.iterrows())


# ---------------------------------------------------------------------------------------------------------
# Determinism: export a history, replay it against a version of the code, explain a bad history file.

def workflow_type_of(workflow_class: type) -> str:
    """The workflow type name a class is registered under (what histories record)."""
    definition = _Definition.from_class(workflow_class)
    if definition is None or definition.name is None:
        raise ValueError(f"{workflow_class.__name__} is not a @workflow.defn class")
    return definition.name


def history_dir() -> Path:
    path = state_dir() / "histories"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def export_history(handle, path: str | Path | None = None) -> Path:
    """Fetch a workflow's history from the server and write it as JSON (the format the Web UI and
    `temporal workflow show --output json` download, so those files replay too)."""
    history = await handle.fetch_history()
    target = Path(path) if path else history_dir() / f"{handle.id}.json"
    target.write_text(history.to_json())
    return target


def load_history(path: str | Path) -> WorkflowHistory:
    """Read a history file; a missing, truncated or foreign file raises WorkbookError with what to do."""
    path = Path(path)
    if not path.is_file():
        raise WorkbookError(f"No history file at {path}: export one first with `await replay.export_history(handle)`.")
    text = path.read_text(errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise WorkbookError(f"{path.name} is not complete JSON ({err.msg}: line {err.lineno}, column {err.colno}): "
                            "the file was cut short or edited. Export the history again.") from None
    try:
        history = WorkflowHistory.from_json(path.stem, data)
    except Exception as err:  # protobuf's ParseError, KeyError, TypeError...: all mean "not a history"
        raise WorkbookError(f"{path.name} is JSON but not a Temporal history "
                            f"({type(err).__name__}: {str(err).splitlines()[0][:120]}).") from None
    events = list(history.events)
    if not events:
        raise WorkbookError(f"{path.name} holds no events: export the history of a workflow that has run.")
    if events[0].event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        raise WorkbookError(f"{path.name} does not start with WorkflowExecutionStarted: the beginning of the "
                            "history is missing. Export the whole history again.")
    for before, event in zip(events, events[1:]):
        if event.event_id != before.event_id + 1:
            raise WorkbookError(f"{path.name} jumps from event {before.event_id} to {event.event_id}: events are "
                                "missing from the middle. Export the whole history again.")
    return history


def _core_message(failure: BaseException) -> str:
    """The SDK core wraps the reason in `Failure { failure: Some(Failure { message: "..." ...`: keep the reason."""
    text = str(failure)
    inner = re.search(r'message: "((?:[^"\\]|\\.)*)"', text)
    return (inner.group(1) if inner else text.splitlines()[0] if text else type(failure).__name__)[:300]


@dataclass(frozen=True)
class ReplayReport:
    """What replaying one history against one version of the code gave."""

    code: str  # the class replayed
    workflow_id: str
    events: int
    ok: bool
    error: str  # "" when ok; otherwise the SDK's error type and the first line of its message
    seconds: float

    def line(self) -> str:
        verdict = "replays cleanly" if self.ok else f"FAILS: {self.error}"
        return f"{self.code} against {self.workflow_id} ({self.events} events): {verdict}"


async def replay_history(source, workflow_class: type, *, timeout: float = 20.0) -> ReplayReport:
    """Replay a history (a file path, or a `WorkflowHistory`) against `workflow_class` with the SDK's `Replayer`.

    No server and no worker are involved: the `Replayer` feeds the recorded events to the code and checks that
    the code asks for the same commands. A bad file or a history of another workflow type raises WorkbookError
    before anything runs; the replay itself is bounded by `timeout`, so it never hangs.
    """
    history = source if isinstance(source, WorkflowHistory) else load_history(source)
    recorded = history.events[0].workflow_execution_started_event_attributes.workflow_type.name
    expected = workflow_type_of(workflow_class)
    if recorded != expected:
        raise WorkbookError(f"This is a history of a '{recorded}' workflow, and {workflow_class.__name__} is "
                            f"'{expected}': replay it with the code of '{recorded}'.")
    replayer = Replayer(workflows=[workflow_class], runtime=metrics.runtime())
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(replayer.replay_workflow(history, raise_on_replay_failure=False), timeout)
    except asyncio.TimeoutError:
        raise WorkbookError(f"Replaying {history.workflow_id} took more than {timeout:.0f} s and was stopped.") from None
    failure = result.replay_failure
    error = "" if failure is None else f"{type(failure).__name__}: {_core_message(failure)}"
    return ReplayReport(code=workflow_class.__name__, workflow_id=history.workflow_id, events=len(history.events),
                        ok=failure is None, error=error, seconds=time.perf_counter() - started)

