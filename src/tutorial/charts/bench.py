"""The benchmark's chart: latency, throughput and history events side by side (the figures are
`tutorial.bench`'s `Results`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..bench.model import THROUGHPUT_KEYS, Results
from . import readable

HELPER_KEYS = ("update_raw", "update_helper")  # as bench.report.HELPER_KEYS: for maintainers, not notebook 07

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


def chart(results: Results, *, helpers: bool = True, notebook: bool = False):
    """Three panels: latency p50/p95 (log scale, x floor), throughput by callers, history events per op.

    `helpers=False` leaves out the helpers' paired rows (notebook 07 shows none); `notebook=True` lays the panels
    out for a notebook's width (latency on top, the other two below it, fonts at least 9 pt at 100 %)."""
    r = results
    fs = 9 if notebook else 8
    if notebook:
        fig = plt.figure(figsize=(10, 10))
        grid = fig.add_gridspec(2, 2, height_ratios=[1.25, 1.0])
        ax1, ax2, ax3 = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    else:
        fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(17, 6.8), gridspec_kw={"width_ratios": [1.4, 1.0, 0.8]})
    keys = [k for k in r.latency if helpers or k not in HELPER_KEYS] + [f"ovl:{k}" for k in r.overloaded]
    labels = [SHORT[k] if not k.startswith("ovl:") else f"{SHORT[k[4:]]}, OVERLOADED" for k in keys]
    lats = [r.latency[k] if not k.startswith("ovl:") else r.overloaded[k[4:]] for k in keys]
    y = list(range(len(keys)))[::-1]
    colours = ["#d62728" if k.startswith("ovl:") else "#1f77b4" for k in keys]
    ax1.barh([v + 0.2 for v in y], [lat.p50 for lat in lats], height=0.4, color=colours, label="p50")
    ax1.barh([v - 0.2 for v in y], [lat.p95 for lat in lats], height=0.4, color="#c7c7c7", label="p95")
    for v, lat in zip(y, lats):
        ax1.annotate(f"{lat.p50:.1f} ms = {r.x_floor(lat.p50):.0f}x floor", (max(lat.p50, lat.p95), v),
                     xytext=(4, -3), textcoords="offset points", fontsize=fs)
    ax1.set_yticks(y, labels, fontsize=fs)
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
    ax2.legend(fontsize=fs - 1, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax2.grid(alpha=0.3)

    events = r.events_per_op()
    ax3.bar(range(len(events)), list(events.values()), color="#9467bd")
    for i, e in enumerate(events.values()):
        ax3.annotate(f"{e:.1f}", (i, e), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=fs)
    ax3.set_xticks(range(len(events)), [EVENT_LABELS[k] for k in events], fontsize=fs)
    ax3.set_ylabel("history events added per interaction")
    title = "History events per interaction"
    if r.replay_ms_per_1000:
        title += f"\nreplay: {r.replay_p50:.0f} ms per 1,000 events (p50)"
    ax3.set_title(title)
    ax3.grid(axis="y", alpha=0.3)
    fig.suptitle(f"Temporal interactions side by side · {r.target} · N={r.settings.n}"
                 + ("\n" if notebook else " · ") + r.machine, fontsize=fs + 2)
    return readable(fig)


def write_png(results: Results, path: Path) -> Path:
    """The chart as a PNG file (the command's `results.png`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = chart(results)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

