"""The round-trip chart: one stacked bar per interaction and rhythm, its stages in order, from known parts."""

from __future__ import annotations

import pytest

from tutorial.charts import plt
from tutorial.charts import round_trips as chart_module
from tutorial.round_trips import STAGES, Breakdown, Parts, Trip


def breakdown(key: str, rhythm: str, queue: float) -> Breakdown:
    stages = dict(zip(STAGES, (2.0, queue, 9.0, 0.1, 3.0)))
    trip = Trip(key, "wf", 0.0, sum(stages.values()) / 1000)
    return Breakdown(key, rhythm, [Parts(trip, stages)])


def test_one_stacked_bar_per_interaction_and_rhythm():
    trips = {("paced", "signal_query"): breakdown("signal_query", "paced", 2.0),
             ("back to back", "signal_query"): breakdown("signal_query", "back to back", 36.0),
             ("paced", "update"): breakdown("update", "paced", 1.0),
             ("back to back", "update"): breakdown("update", "back to back", 0.8)}
    fig = chart_module.chart(trips, {"signal_query": "signal, then query", "update": "update"})
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["signal, then query · paced", "signal, then query · back to back", "update · paced",
                      "update · back to back"]
    assert len(ax.patches) == len(trips) * len(STAGES)
    # the queue segment of the back-to-back signal is the wide red one
    queue = [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx(
        tuple(int(chart_module.COLOURS["in a queue"][i:i + 2], 16) / 255 for i in (1, 3, 5)), abs=0.01)]
    assert max(p.get_width() for p in queue) == pytest.approx(36.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(STAGES)
    totals = [t.get_text() for t in ax.texts if t.get_text().endswith(" ms")]
    assert "50.1 ms" in totals and "15.1 ms" in totals
    plt.close(fig)
