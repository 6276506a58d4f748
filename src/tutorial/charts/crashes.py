"""Chart of notebook 06's worker loss: how long the next update waited after a crash and after a graceful stop."""

from __future__ import annotations

import matplotlib.pyplot as plt

from . import readable


def stall_chart(losses, ax=None):
    """One bar per run: the update's round trip after worker B was lost, beside the sticky timeout."""
    if ax is None:
        _fig, ax = plt.subplots(figsize=(7, 3.2))
    labels = [f"{'SIGKILL' if x.how == 'kill' else 'graceful'} #{i // 2 + 1}" for i, x in enumerate(losses)]
    colours = ["#b00020" if x.how == "kill" else "#1b5e20" for x in losses]
    ax.barh(labels, [x.stall_s for x in losses], color=colours)
    timeout = losses[0].sticky_timeout_s
    ax.axvline(timeout, color="#555555", linestyle="--", label=f"sticky schedule-to-start timeout ({timeout:g} s)")
    ax.invert_yaxis()
    ax.set_xlabel("seconds until the next update returned")
    ax.set_title("After a crash the entity waits for the sticky timeout; after a graceful stop it does not")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="x")
    return readable(ax.figure)
