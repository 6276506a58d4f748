"""Charts of what a replay costs (the measurements are `tutorial.replay.replay_cost`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from . import readable


def cost_chart(frame: pd.DataFrame, ax=None):
    """Milliseconds per workflow task against history length, with and without the cache (log-log)."""
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
    return readable(ax.figure)
