"""Notebook 04: the worker's cache, eviction, and replay, seen live.

`Ledger` is a small bank-account entity workflow (it mirrors notebook 02's signal-based entity, built here on
`domain.py` so this notebook stands on its own): `deposit` / `withdraw` / `close` signals change it, the `state`
query reads it. Every handler writes a line to the replay-safe `workflow.logger` (silent while replaying) and,
*only while replaying*, a line to a plain Python logger: together they show from inside the workflow when the
worker is re-running old history to rebuild state it lost.

`LedgerV2` and `LedgerV3` are later versions of the same workflow type (same name, "ReplayLedger"): V2 adds a
grace-period timer incompatibly, V3 adds it behind `workflow.patched`. The `Replayer` helpers below replay an
exported history against any version, with clear messages for a bad history file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import statistics
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow

from .workflows import domain
from .workflows.domain import Account, Transaction

WORKFLOW_NAME = "ReplayLedger"
TRACE_LOGGER = "tutorial.replay.trace"  # a plain logger: it logs whenever the code runs (we guard it)
WORKFLOW_LOGGER = "temporalio.workflow"  # the SDK's replay-safe `workflow.logger` writes here
GRACE_PERIOD = timedelta(milliseconds=100)

_trace = logging.getLogger(TRACE_LOGGER)


class _LedgerBase:
    """What every version shares: the account, the signals, the query, and the two kinds of log line."""

    @workflow.init
    def __init__(self, account_id: str) -> None:
        # @workflow.init: the state exists before any signal is handled, even a signal that arrived with the start
        self.account = Account(account_id=account_id)
        self.rejected: list[str] = []
        self.closing = False

    def _note(self, text: str) -> None:
        """Log `text` replay-safely, and trace it if this code is running again during a replay."""
        workflow.logger.info(text)  # replay-safe: skipped while the worker replays history
        if workflow.unsafe.is_replaying():
            info = workflow.info()
            _trace.info(f"replaying: {text}", extra={
                "workflow_id": info.workflow_id, "history_length": info.get_current_history_length(),
            })

    def _apply(self, operation: str, amount: int) -> None:
        try:
            self.account = domain.apply(self.account, Transaction(operation, amount))
            self._note(f"{operation} {amount}: balance {self.account.balance}")
        except domain.AccountError as err:  # a signal cannot answer, so a refusal is recorded in the state
            self.rejected.append(str(err))
            self._note(f"{operation} {amount} refused: {err}")

    @workflow.signal
    def deposit(self, amount: int) -> None:
        self._apply("deposit", amount)

    @workflow.signal
    def withdraw(self, amount: int) -> None:
        self._apply("withdraw", amount)

    @workflow.signal
    def close(self) -> None:
        self.closing = True

    @workflow.query
    def state(self) -> Account:
        return self.account

    @workflow.query
    def refusals(self) -> list[str]:
        return list(self.rejected)


@workflow.defn(name=WORKFLOW_NAME)
class Ledger(_LedgerBase):
    """Version 1: open the account, apply signals until `close`, return the final account."""

    @workflow.run
    async def run(self, account_id: str) -> Account:
        self._note(f"account {account_id} opened")
        await workflow.wait_condition(lambda: self.closing)
        self.account = domain.close(self.account)
        self._note(f"account closed with balance {self.account.balance}")
        return self.account


@workflow.defn(name=WORKFLOW_NAME)
class LedgerV2(_LedgerBase):
    """Version 2, INCOMPATIBLE: a grace period (a timer) before closing. Old histories have no such timer."""

    @workflow.run
    async def run(self, account_id: str) -> Account:
        self._note(f"account {account_id} opened")
        await workflow.wait_condition(lambda: self.closing)
        await workflow.sleep(GRACE_PERIOD)  # new command: replaying a version-1 history fails here
        self.account = domain.close(self.account)
        self._note(f"account closed with balance {self.account.balance}")
        return self.account


@workflow.defn(name=WORKFLOW_NAME)
class LedgerV3(_LedgerBase):
    """Version 3, compatible: the same grace period, but only for workflows that reach it running this code."""

    @workflow.run
    async def run(self, account_id: str) -> Account:
        self._note(f"account {account_id} opened")
        await workflow.wait_condition(lambda: self.closing)
        if workflow.patched("grace-period"):  # False while replaying a history recorded without the patch
            await workflow.sleep(GRACE_PERIOD)
        self.account = domain.close(self.account)
        self._note(f"account closed with balance {self.account.balance}")
        return self.account


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

    def frame(self, mark: int = 0, workflow_id: str | None = None):
        import pandas as pd

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
# Waiting until a task is done, and looking into the worker's cache (helpers run outside the sandbox).

async def settle(handle, timeout: float = 20.0) -> int:
    """Wait until the server holds no workflow task for `handle` (every signal sent so far has been applied by a
    worker); return the history length. Asks the server (`describe`), never the worker, so it moves no cache."""
    deadline = time.monotonic() + timeout
    while True:
        description = await handle.describe()
        if not description.raw_description.HasField("pending_workflow_task"):
            return description.history_length
        if time.monotonic() > deadline:
            from .server import WorkbookError

            raise WorkbookError(f"{handle.id} still has a workflow task waiting after {timeout:.0f} s: "
                                "is the worker running?")
        await asyncio.sleep(0.01)


# ---------------------------------------------------------------------------------------------------------
# The live counters, and the play area around them.

@dataclass(frozen=True)
class Step:
    """One refresh of the board: what the cache holds, the counters, and their change since the last step."""

    label: str
    cached: tuple[str, ...]  # names of the workflows in the worker's cache right now
    counters: Any  # metrics.CacheCounters, totals for this worker's task queue
    delta: Any  # metrics.CacheCounters, change since the previous step


class CacheBoard:
    """The worker's cache counters as a small table that refreshes in place: one row per step, newest last.

    Cache size and contents come from the worker itself; hits and forced evictions from the SDK's metrics
    (`temporal_sticky_cache_hit`, `temporal_sticky_cache_total_forced_eviction`); replays from the worker's
    interceptor, which sees every time a workflow object is rebuilt from history.
    """

    def __init__(self, controller, names: dict[str, str] | None = None, keep: int = 8):
        import ipywidgets

        self.controller = controller
        self.names = dict(names or {})  # workflow id -> short name shown on the board
        self.keep = keep
        self.steps: list[Step] = []
        self.widget = ipywidgets.HTML()
        self._last = controller.cache()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def name(self, workflow_id: str) -> str:
        return self.names.get(workflow_id, workflow_id.rsplit("-", 1)[-1])

    def refresh(self, label: str) -> Step:
        """Read the counters now, add a row, redraw; returns the step (its `delta` is what this step did)."""
        counters = self.controller.cache()
        cached = tuple(self.name(wid) for wid in self.controller.cached_ids())
        step = Step(label, cached, counters, counters.minus(self._last))
        self._last = counters
        self.steps.append(step)
        self.widget.value = self.html()
        return step

    def html(self) -> str:
        import html as html_lib

        capacity = self.controller.settings.max_cached_workflows
        pad = "padding:2px 10px;border-bottom:1px solid #ddd"
        head = "<tr>" + "".join(f"<th style='{pad}'>{name}</th>" for name in (
            "step", "in cache", "cache size", "hits", "forced evictions", "replays")) + "</tr>"

        def cell(total: int, change: int) -> str:
            mark = f" <b style='color:#b00020'>+{change}</b>" if change else ""
            return f"<td style='text-align:center;{pad}'>{total}{mark}</td>"

        body = []
        for step in self.steps[-self.keep:]:
            c, d = step.counters, step.delta
            gauge = "■" * len(step.cached) + "□" * max(0, min(capacity, 10) - len(step.cached))
            body.append(
                f"<tr><td style='{pad}'>{html_lib.escape(step.label)}</td>"
                f"<td style='text-align:center;{pad}'>{html_lib.escape(', '.join(step.cached) or '(empty)')}</td>"
                f"<td style='text-align:center;font-family:monospace;{pad}'>{len(step.cached)} {gauge}</td>"
                f"{cell(c.cache_hits, d.cache_hits)}{cell(c.forced_evictions, d.forced_evictions)}"
                f"{cell(c.replays, d.replays)}</tr>")
        title = (f"<b>Worker cache</b> <small>({html_lib.escape(self.controller.task_queue)}, "
                 f"max_cached_workflows={capacity}, start #{self.controller.starts})</small>")
        return f"{title}<table style='border-collapse:collapse'>{head}{''.join(body)}</table>"

    def frame(self):
        import pandas as pd

        return pd.DataFrame([{
            "step": s.label, "in cache": ", ".join(s.cached), "cache size": len(s.cached),
            "hits": s.counters.cache_hits, "forced evictions": s.counters.forced_evictions,
            "replays": s.counters.replays, "new forced evictions": s.delta.forced_evictions,
            "new replays": s.delta.replays,
        } for s in self.steps])


CACHE_SIZES = (0, 1, 2, 10, 1000)


class Playground:
    """Buttons around a worker and two ledgers: restart the worker, change its cache size, deposit into A or B.

    Every action ends by refreshing the board. `sent` counts the deposits each ledger was sent, so a cell can
    check that no restart, eviction or replay ever lost or doubled one."""

    def __init__(self, controller, board: CacheBoard, ledgers: dict[str, Any]):
        import ipywidgets

        from .widgets import ActionButton

        self.controller, self.board, self.ledgers = controller, board, ledgers
        self.sent = {name: 0 for name in ledgers}
        self.size = ipywidgets.Dropdown(options=list(CACHE_SIZES), value=1, description="cache size",
                                        layout=ipywidgets.Layout(width="200px"))
        self.restart_button = ActionButton("Restart worker", self.restart, button_style="warning")
        self.size_button = ActionButton("Restart with this cache size", self.apply_size, button_style="warning")
        self.deposit_buttons = {name: ActionButton(f"Deposit 1 → {name}", lambda n=name: self.deposit(n))
                                for name in ledgers}
        buttons = [self.restart_button, self.size_button, *self.deposit_buttons.values()]
        self.widget = ipywidgets.VBox([
            ipywidgets.HBox([self.restart_button.button, self.size, self.size_button.button]),
            ipywidgets.HBox([b.button for b in self.deposit_buttons.values()]),
            board.widget, *[b.output for b in buttons],
        ])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    async def restart(self) -> str:
        await self.controller.restart()
        self.board.refresh("restart")
        return f"restarted: {self.controller.status()}"

    async def apply_size(self) -> str:
        size = self.size.value
        if size not in CACHE_SIZES:
            raise ValueError(f"cache size must be one of {CACHE_SIZES}")
        await self.controller.restart(max_cached_workflows=size)
        self.board.refresh(f"restart, cache {size}")
        return f"restarted with max_cached_workflows={size}"

    async def deposit(self, name: str) -> str:
        handle = self.ledgers[name]
        if not self.controller.running:
            raise ValueError("the worker is stopped: restart it first")
        await handle.signal(Ledger.deposit, 1)
        self.sent[name] += 1
        length = await settle(handle)
        step = self.board.refresh(f"deposit → {name}")
        return (f"deposit applied to {name} (history {length} events); this step: "
                f"{step.delta.forced_evictions} forced eviction(s), {step.delta.replays} replay(s)")


# ---------------------------------------------------------------------------------------------------------
# The exercise's experiment: a sequence of tasks for workflows A, B, C... through a worker with a small cache.

async def run_sequence(client, sequence: str, cache_size: int, *, task_queue: str = "nb04-sequence") -> dict[str, Any]:
    """Send one workflow task per letter of `sequence` (the first time a letter appears, the workflow starts;
    afterwards it gets a deposit), one task at a time, through a fresh worker whose cache holds `cache_size`
    workflows. Returns the replays and forced evictions measured, and the final balances."""
    from .worker import WorkerController
    from .workshop import unique

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
    from temporalio.api.enums.v1 import EventType

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


async def replay_cost(client, sizes=(20, 200, 1000, 2000), samples: int = 3, progress=None):
    """Task latency at each history size, with the worker cache and with `max_cached_workflows=0`.

    One ledger grows through the sizes (deposits sent 50 at a time). At each size, `samples` deposits are
    timed through a worker with a cache; then the worker restarts with no cache and `samples` more deposits are
    timed, each one replaying the whole history; then the cache comes back for the next size. Returns a
    DataFrame, one row per size, with the median milliseconds per workflow task."""
    import pandas as pd

    from .worker import WorkerController
    from .workshop import unique

    controller = WorkerController(client, task_queue=unique("nb04-cost"), workflows=[Ledger], max_cached_workflows=100)
    rows = []

    async def timed_deposits() -> float:
        for _ in range(samples):
            await handle.signal(Ledger.deposit, 1)
            await settle(handle, timeout=60)
        return statistics.median(task_latencies_ms((await handle.fetch_history()).events, samples))

    await controller.start()
    handle = await client.start_workflow(Ledger.run, "cost", id=unique("nb04-cost"), task_queue=controller.task_queue)
    try:
        for size in sorted(sizes):
            if controller.settings.max_cached_workflows == 0:
                await controller.restart(max_cached_workflows=100)
            events = await grow_history(handle, size)
            with_cache = await timed_deposits()
            await controller.restart(max_cached_workflows=0)
            replays_before = controller.replays(handle.id)
            without_cache = await timed_deposits()
            rows.append({"history events": events, "with cache (ms per task)": with_cache,
                         "no cache (ms per task)": without_cache,
                         "replays": controller.replays(handle.id) - replays_before})
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


def cost_chart(frame, ax=None):
    """Milliseconds per workflow task against history length, with and without the cache (log-log)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _fig, ax = plt.subplots(figsize=(7, 3.6))
    x = frame["history events"]
    ax.plot(x, frame["no cache (ms per task)"], "o-", color="#b00020", label="max_cached_workflows=0: replay every task")
    ax.plot(x, frame["with cache (ms per task)"], "o-", color="#1b5e20", label="with the cache")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events in the history")
    ax.set_ylabel("ms per workflow task")
    ax.set_title("The cost of a replay grows with the history")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


# ---------------------------------------------------------------------------------------------------------
# Determinism: export a history, replay it against a version of the code, explain a bad history file.

def workflow_type_of(workflow_class: type) -> str:
    """The workflow type name a class is registered under (what histories record)."""
    from temporalio.workflow import _Definition

    definition = _Definition.from_class(workflow_class)
    if definition is None or definition.name is None:
        raise ValueError(f"{workflow_class.__name__} is not a @workflow.defn class")
    return definition.name


def history_dir() -> Path:
    from .workshop import state_dir

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


def load_history(path: str | Path):
    """Read a history file; a missing, truncated or foreign file raises WorkbookError with what to do."""
    from temporalio.api.enums.v1 import EventType
    from temporalio.client import WorkflowHistory

    from .server import WorkbookError

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
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from . import metrics
    from .server import WorkbookError

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
