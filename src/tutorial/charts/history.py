"""Charts of a workflow's event history (the table itself is `tutorial.history`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from . import readable

# Colours for the timeline, by what kind of thing happened.
CATEGORY_COLOURS = {
    "workflow": "#1f77b4",
    "workflow task": "#7f7f7f",
    "activity": "#2ca02c",
    "signal": "#ff7f0e",
    "update": "#9467bd",
    "timer": "#8c564b",
    "other": "#17becf",
}


def timeline(frame: pd.DataFrame, title: str = "Event history", ax=None, gap_ms: float = 500):
    """A timeline: one dot per event, in order, one row per kind of event; long waits are shaded and labelled.

    Events are spaced by their order rather than their time, so that a burst of events stays readable;
    every gap longer than `gap_ms` (a task waiting for a worker, a timer, a slow activity) says how long it was.
    The x ticks are event ids: read the names in the history table beside it.
    """
    if ax is None:
        _fig, ax = plt.subplots(figsize=(max(6, min(16, 0.55 * len(frame) + 2)), 3.4))
    rows = list(CATEGORY_COLOURS)
    xs = list(range(len(frame)))
    for x, (_, event) in zip(xs, frame.iterrows()):
        y = rows.index(event["category"])
        ax.scatter(x, y, color=CATEGORY_COLOURS[event["category"]], s=70, zorder=3)
    ms = list(frame["ms"])
    for x in xs[1:]:
        wait = ms[x] - ms[x - 1]
        if wait >= gap_ms:
            ax.axvspan(x - 0.9, x - 0.1, color="#ffe082", alpha=0.5, zorder=1)
            ax.text(x - 0.5, len(rows) - 0.6, f"waited\n{wait / 1000:.1f} s", ha="center", va="top", fontsize=8)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_ylim(-0.6, len(rows) - 0.1)
    ax.set_xticks(xs, [str(i) for i in frame["id"]], fontsize=7)
    ax.set_xlabel(f"event id, in order (total {ms[-1] / 1000 if ms else 0:.2f} s)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.2)
    return readable(ax.figure)
