"""Where one round trip's time goes: a stacked bar per interaction and rhythm (`tutorial.round_trips`)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from ..round_trips import STAGES, Breakdown
from . import readable

COLOURS = {"to the server": "#9467bd", "in a queue": "#d62728", "in the worker": "#2ca02c",
           "in the server": "#bdbdbd", "back to the client": "#ff9f4a"}


def chart(breakdowns: dict[tuple[str, str], Breakdown], labels: dict[str, str], *, title: str = ""):
    """One stacked bar per (rhythm, key): the typical round trip's STAGES in ms, left to right as they happen.

    `labels`: key -> what to call the interaction. Bars of one interaction sit together, its rhythms one below
    the other, so a learner sees what pacing changes (the red part: waiting in a queue)."""
    keys = list(dict.fromkeys(key for _rhythm, key in breakdowns))
    rhythms = list(dict.fromkeys(rhythm for rhythm, _key in breakdowns))
    rows = [(key, rhythm) for key in keys for rhythm in rhythms if (rhythm, key) in breakdowns]
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 2.4))
    y = list(range(len(rows)))[::-1]
    longest = max(breakdowns[(r, k)].typical.total for k, r in rows) if rows else 1.0
    named: set[str] = set()  # each stage once in the legend
    for v, (key, rhythm) in zip(y, rows):
        stages = breakdowns[(rhythm, key)].typical.stages
        left = 0.0
        for stage in STAGES:
            width = max(stages[stage], 0.0)
            ax.barh(v, width, left=left, color=COLOURS[stage], height=0.7, label=None if stage in named else stage)
            named.add(stage)
            if width >= longest * 0.06:
                ax.annotate(f"{width:.0f}", (left + width / 2, v), ha="center", va="center", fontsize=8)
            left += width
        ax.annotate(f"{left:.1f} ms", (left, v), xytext=(4, -3), textcoords="offset points", fontsize=9)
    ax.set_yticks(y, [f"{labels.get(k, k)} · {r}" for k, r in rows], fontsize=9)
    ax.set_xlim(0, longest * 1.18)
    ax.set_xlabel("milliseconds of one round trip (the typical of the last ones measured)")
    ax.set_title(title or "Where one round trip's time goes\n(the history's timestamps beside the client's clock)")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend([unique[s] for s in STAGES if s in unique], [s for s in STAGES if s in unique], fontsize=9,
              loc="upper center", bbox_to_anchor=(0.5, -1.6 / max(1, len(rows))), ncol=3, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return readable(fig)


def write_png(breakdowns: dict[tuple[str, str], Breakdown], labels: dict[str, str], path):
    """The chart as a PNG file (the command's `round_trips.png`)."""
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = chart(breakdowns, labels)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
