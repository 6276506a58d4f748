"""Notebook 04's live boards: the worker's cache counters refreshing in place, and the buttons around them.

`CacheBoard` is a table of what the worker's cache holds and what it did (hits, forced evictions, replays), one
row per step. Each time a notebook shows it, that display becomes the live one and the displays before it stay
as snapshots of their own step. `Playground` adds buttons: restart the worker, change its cache size, deposit
into a ledger; after Run All's clean-up (worker stopped, ledgers closed) a deposit starts the worker again and
opens a fresh ledger under the same name, and says so. The ledgers are `tutorial.workflows.ledger.Ledger`;
`tutorial.replay.settle` waits until a deposit is applied.
"""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass
from typing import Any

import ipywidgets
import pandas as pd
from IPython.display import display

from .readiness import Reopening, running_worker
from .replay import settle
from .widgets import ActionButton
from .workflows.ledger import Ledger

CACHE_SIZES = (0, 1, 2, 10, 1000)  # the cache sizes the playground offers
SNAPSHOT_NOTE = ("<div style='color:#555;font-size:small'>snapshot of this step: the live board is the last one "
                 "shown below</div>")


class _BoardView(ipywidgets.HTML):
    """One view of the board. Its display also carries the board as plain HTML, so a saved notebook (no kernel,
    no widget state) still shows the rows of the step it was shown in."""

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/html"] = self.value
            bundle["text/plain"] = "worker cache board"
        return bundle


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

    Showing the board (`display(board)`, or `board.view()` inside another widget) makes a new live view: the
    views shown before it stop refreshing and keep, as a snapshot, the rows of the step they were shown in.
    """

    def __init__(self, controller, names: dict[str, str] | None = None, keep: int = 8):
        self.controller = controller
        self.names = dict(names or {})  # workflow id -> short name shown on the board
        self.keep = keep
        self.steps: list[Step] = []
        self.views: list[ipywidgets.HTML] = []  # every view shown; only the last one refreshes
        self._last = controller.cache()

    @property
    def widget(self) -> ipywidgets.HTML:
        """The live view (made on first use)."""
        return self.views[-1] if self.views else self.view()

    def view(self) -> ipywidgets.HTML:
        """A new live view of the board; the earlier ones become snapshots of their step (they no longer refresh)."""
        for old in self.views:
            if not old.value.startswith(SNAPSHOT_NOTE):
                old.value = SNAPSHOT_NOTE + old.value
        view = _BoardView(value=self.html())
        self.views.append(view)
        return view

    def _ipython_display_(self) -> None:
        display(self.view())

    def name(self, workflow_id: str) -> str:
        return self.names.get(workflow_id, workflow_id.rsplit("-", 1)[-1])

    def refresh(self, label: str) -> Step:
        """Read the counters now, add a row, redraw; returns the step (its `delta` is what this step did)."""
        counters = self.controller.cache()
        cached = tuple(self.name(wid) for wid in self.controller.cached_ids())
        step = Step(label, cached, counters, counters.minus(self._last))
        self._last = counters
        self.steps.append(step)
        if self.views:
            self.views[-1].value = self.html()  # the live view only: earlier ones keep their step's rows
        return step

    def html(self) -> str:
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

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "step": s.label, "in cache": ", ".join(s.cached), "cache size": len(s.cached),
            "hits": s.counters.cache_hits, "forced evictions": s.counters.forced_evictions,
            "replays": s.counters.replays, "new forced evictions": s.delta.forced_evictions,
            "new replays": s.delta.replays,
        } for s in self.steps])


class Playground:
    """Buttons around a worker and two ledgers: restart the worker, change its cache size, deposit into A or B.

    Every action ends by refreshing the board (its own live view). `sent` counts the deposits each ledger was
    sent, so a cell can check that no restart, eviction or replay ever lost or doubled one. After Run All's
    clean-up a deposit still gives a result: a stopped worker is started again, and a closed ledger is replaced
    by a fresh one with a new id (the board names it as before, and its `sent` count starts again at 0)."""

    def __init__(self, controller, board: CacheBoard, ledgers: dict[str, Any], *, prefix: str = "ledger"):
        self.controller, self.board = controller, board
        self.ledgers = {name: handle if isinstance(handle, Reopening) else
                        Reopening(handle, self._opener(name), prefix=f"{prefix}-{name}", what="ledger")
                        for name, handle in ledgers.items()}
        self.sent = {name: 0 for name in ledgers}
        self.size = ipywidgets.Dropdown(options=list(CACHE_SIZES), value=1, description="cache size",
                                        layout=ipywidgets.Layout(width="200px"))
        self.messages = ipywidgets.Output()  # one answer line for every button: the newest click's
        self.restart_button = ActionButton("Restart worker", self.restart, button_style="warning",
                                           output=self.messages)
        self.size_button = ActionButton("Restart with this cache size", self.apply_size, button_style="warning",
                                        output=self.messages)
        self.deposit_buttons = {name: ActionButton(f"Deposit 1 → {name}", lambda n=name: self.deposit(n),
                                                   output=self.messages, needs=[running_worker(controller)])
                                for name in ledgers}
        self.widget = ipywidgets.VBox([
            ipywidgets.HBox([self.restart_button.button, self.size, self.size_button.button]),
            ipywidgets.HBox([b.button for b in self.deposit_buttons.values()]),
            board.view(), self.messages,
        ])

    def _ipython_display_(self) -> None:
        display(self.widget)

    def _opener(self, name: str):
        async def open_fresh(workflow_id: str):
            handle = await self.controller.client.start_workflow(Ledger.run, name, id=workflow_id,
                                                                 task_queue=self.controller.task_queue)
            await settle(handle)
            self.board.names[workflow_id] = name  # the board calls the fresh ledger by the same name
            self.sent[name] = 0
            self.board.refresh(f"{name} reopened")
            return handle
        return open_fresh

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
        ledger = self.ledgers[name]
        await ledger.act(lambda handle: handle.signal(Ledger.deposit, 1))  # a closed ledger: a fresh one
        self.sent[name] += 1
        length = await settle(ledger.handle)
        step = self.board.refresh(f"deposit → {name}")
        return (f"deposit applied to {name} (history {length} events); this step: "
                f"{step.delta.forced_evictions} forced eviction(s), {step.delta.replays} replay(s)")


@dataclass(frozen=True)
class WorkerRow:
    """What one worker holds at one step: its status line, the workflows in its cache, its replays so far."""

    status: str
    cached: tuple[str, ...]
    replays: int


class WorkersBoard:
    """Notebook 04's cache board for several workers at once (notebook 06: worker A in the kernel, worker B in
    its own process): one row per step, so a learner sees an entity leave a killed worker's cache and the survivor
    replay it. `readers` maps a worker's name to an async function returning its `WorkerRow` now."""

    def __init__(self, readers: dict, names: dict[str, str] | None = None, keep: int = 6):
        self.readers = readers
        self.names = dict(names or {})  # workflow id -> short name shown on the board
        self.keep = keep
        self.steps: list[tuple[str, dict[str, WorkerRow]]] = []
        self.widget = _BoardView(value="<i>the board fills in as you press the buttons</i>")

    def name(self, workflow_id: str) -> str:
        return self.names.get(workflow_id, workflow_id.rsplit("-", 1)[-1])

    async def refresh(self, label: str) -> dict[str, WorkerRow]:
        """Read every worker now, add a row, redraw; returns the rows read."""
        rows = {}
        for worker, read in self.readers.items():
            row = await read()
            rows[worker] = WorkerRow(row.status, tuple(self.name(w) for w in row.cached), row.replays)
        self.steps.append((label, rows))
        self.widget.value = self.html()
        return rows

    def html(self) -> str:
        pad = "padding:2px 10px;border-bottom:1px solid #ddd;vertical-align:top"
        workers = list(self.readers)
        head = f"<tr><th style='{pad}'>step</th>" + "".join(
            f"<th style='{pad}'>{html_lib.escape(w)}</th>" for w in workers) + "</tr>"
        body, before = [], {}
        for label, rows in self.steps:
            cells = []
            for w in workers:
                row, last = rows[w], before.get(w)
                new = row.replays - last.replays if last else 0
                mark = f" <b style='color:#b00020'>+{new}</b>" if new > 0 else ""
                cells.append(f"<td style='{pad}'>{html_lib.escape(row.status[:60])}<br>"
                             f"in cache: <b>{html_lib.escape(', '.join(row.cached) or '(empty)')}</b>"
                             f" · replays {row.replays}{mark}</td>")
            before = rows
            body.append(f"<tr><td style='{pad}'>{html_lib.escape(label)}</td>{''.join(cells)}</tr>")
        body = body[-self.keep:]
        return ("<b>Worker caches</b> <small>(newest step last)</small>"
                f"<table style='border-collapse:collapse'>{head}{''.join(body)}</table>")
