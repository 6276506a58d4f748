"""Charts for notebook 02 (signals and queries): when a signal's change becomes visible to a query."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from . import readable

MODE_COLOURS = {"at once": "#ff7f0e", "after ack": "#1f77b4"}


def plot_visibility(frame: pd.DataFrame, title: str = "Signal, then query: when does the deposit show?"):
    """Left: how often the first query missed the signal, per mode. Right: time until the deposit was visible.
    `frame` is `entity_signals.probes_frame(...)`: one row per signal."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1, 2.2]})
    modes = list(dict.fromkeys(frame["mode"]))
    missed = [100 * (1 - frame.loc[frame["mode"] == m, "first_query_saw_it"].mean()) for m in modes]
    left.bar(modes, missed, color=[MODE_COLOURS.get(m, "#7f7f7f") for m in modes])
    for x, value in enumerate(missed):
        left.annotate(f"{value:.0f}%", (x, value), ha="center", va="bottom")
    left.set_ylabel("first query did not see it (%)")
    left.set_ylim(0, 105)
    upper = max(1.0, frame["visible_ms"].quantile(0.98))
    bins = [upper * i / 40 for i in range(41)]
    for m in modes:
        values = frame.loc[frame["mode"] == m, "visible_ms"].clip(upper=upper)
        right.hist(values, bins=bins, alpha=0.6, label=m, color=MODE_COLOURS.get(m, "#7f7f7f"))
    right.set_xlabel("ms from sending the signal until a query saw the deposit (clipped at p98)")
    right.set_ylabel("signals")
    right.legend()
    fig.suptitle(title)
    return readable(fig)


def plot_busy(idle_ms: Sequence[float], busy_ms: Sequence[float], noise_signals: int):
    """One dot per deposit: how long it took to become visible with an idle and with a busy worker (C13)."""
    fig, ax = plt.subplots(figsize=(8, 2.4))
    for y, (values, colour) in enumerate([(idle_ms, "#1f77b4"), (busy_ms, "#d62728")]):
        ax.scatter(values, [y] * len(values), color=colour, alpha=0.6, s=40)
        median = statistics.median(values)
        ax.plot([median, median], [y - 0.25, y + 0.25], color="black")
        ax.annotate(f"median {median:.0f} ms", (median, y + 0.28), ha="center", fontsize=8)
    ax.set_yticks([0, 1], ["idle worker", f"busy worker\n({noise_signals} noisy signals)"])
    ax.set_ylim(-0.6, 1.8)
    ax.set_xlim(left=0)
    ax.set_xlabel("ms from sending a deposit until a query saw it")
    return readable(fig)
