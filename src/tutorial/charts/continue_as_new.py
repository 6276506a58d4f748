"""Charts for notebook 05 (continue-as-new): a history growing, and a chain of runs against the threshold."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt

from .. import limits
from . import readable


def growth(samples: Sequence[dict[str, Any]], title: str = "Every message adds events and bytes"):
    """History length (events) and size (KiB) against deposits sent, from `continue_as_new.watch_growth`."""
    fig, ax = plt.subplots(figsize=(8, 3))
    sent = [s["deposits sent"] for s in samples]
    ax.plot(sent, [s["history length"] for s in samples], marker="o", color="#1f77b4", label="events")
    ax.set_xlabel("deposits sent (signals)")
    ax.set_ylabel("events in the history", color="#1f77b4")
    size = ax.twinx()
    size.plot(sent, [s["history bytes"] / 1024 for s in samples], marker="s", color="#ff7f0e", label="size")
    size.set_ylabel("history size (KiB)", color="#ff7f0e")
    ax.set_title(f"{title} (limits: {limits.HISTORY_EVENTS_MAX.amount()}, {limits.HISTORY_BYTES_MAX.amount()})")
    return readable(fig)


def chain(runs: Sequence[Any], max_events: int, title: str = "The chain of runs"):
    """Events per run (bars) against the demo threshold; transactions carried to the next run marked on top.

    `runs` are `continue_as_new.RunInfo` (read from the server by `continue_as_new.run_chain`)."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    numbers = [r.run_number for r in runs]
    ax.bar(numbers, [r.events for r in runs], color="#1f77b4", label="events in the run")
    ax.axhline(max_events, color="#d62728", linestyle="--", label=f"demo threshold ({max_events} events)")
    for r in runs:
        if r.carried_out:
            ax.annotate(f"{r.carried_out} carried →", (r.run_number, r.events), textcoords="offset points",
                        xytext=(0, 3), ha="center", fontsize=8, color="#ff7f0e")
    ax.set_xticks(numbers, [f"run {r.run_number}\n{r.run_id[:8]}" for r in runs], fontsize=7)
    ax.set_ylabel("events")
    ax.set_ylim(top=max([max_events] + [r.events for r in runs]) * 1.18)
    ax.set_title(f"{title} (one workflow id; the real limit is {limits.HISTORY_EVENTS_MAX.amount()} per run)")
    ax.legend(loc="upper right", fontsize=8)
    return readable(fig)
