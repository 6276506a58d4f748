"""Charts for notebook 03 (workflow update): latency of one deposit, three ways."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

from . import readable


def latency_cdf(latency_ms: Mapping[str, Sequence[float]],
                title: str = "Update versus signal + query versus workflow per request", ax=None):
    """One cumulative curve per pattern: the fraction of requests answered within x ms (log scale),
    with the p50 and p95 levels marked."""
    if ax is None:
        _fig, ax = plt.subplots(figsize=(9, 3.6))
    for name, values in latency_ms.items():
        ordered = sorted(values)
        ax.plot(ordered, [(k + 1) / len(ordered) for k in range(len(ordered))], label=name)
    for level, label in ((0.5, "p50"), (0.95, "p95")):
        ax.axhline(level, color="grey", linestyle=":", linewidth=1)
        ax.annotate(label, (0, level), xycoords=("axes fraction", "data"), xytext=(3, 3), textcoords="offset points",
                    fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds until the caller knows the deposit happened (log scale)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return readable(ax.figure)
