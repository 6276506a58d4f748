"""Notebook 04's live boards: the worker's cache counters refreshing in place, and the buttons around them.

`CacheBoard` is a table of what the worker's cache holds and what it did (hits, forced evictions, replays), one
row per step. `Playground` adds buttons: restart the worker, change its cache size, deposit into a ledger. The
ledgers are `tutorial.workflows.ledger.Ledger`; `tutorial.replay.settle` waits until a deposit is applied.
"""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass
from typing import Any

import ipywidgets
import pandas as pd
from IPython.display import display

from .replay import settle
from .widgets import ActionButton
from .workflows.ledger import Ledger

CACHE_SIZES = (0, 1, 2, 10, 1000)  # the cache sizes the playground offers


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
        self.controller = controller
        self.names = dict(names or {})  # workflow id -> short name shown on the board
        self.keep = keep
        self.steps: list[Step] = []
        self.widget = ipywidgets.HTML()
        self._last = controller.cache()

    def _ipython_display_(self) -> None:
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

    Every action ends by refreshing the board. `sent` counts the deposits each ledger was sent, so a cell can
    check that no restart, eviction or replay ever lost or doubled one."""

    def __init__(self, controller, board: CacheBoard, ledgers: dict[str, Any]):
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
