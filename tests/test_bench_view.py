"""Notebook 07's Measure output, on a real (tiny) run: the tables and the chart the click draws under its form,
as plain outputs (house-style HTML tables, a PNG), and the decision table one column per pattern."""

from __future__ import annotations

import base64
import os

import pytest

from tutorial import bench
from tutorial.bench import view


@pytest.fixture(scope="module")
def results(run, client):
    settings = bench.Settings(n=1, warmup=0, concurrency=(1, 2), duration=0.1, overload_reps=1,
                              overload_entities=2, paced_n=2, settle=3, pause_ms=(5, 20))
    with open(os.devnull, "w") as quiet:
        return run(bench.run(client, settings, progress=bench.TerminalProgress(1, stream=quiet), target="view"))


def test_the_click_draws_six_outputs_tables_and_two_charts(results):
    latency, pacing, chart, trips, events, throughput = view.outputs(results)
    assert all(o["output_type"] == "display_data" for o in (latency, pacing, chart, trips, events, throughput))
    for png in (chart, trips):
        assert base64.b64decode(png["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "round trip" in trips["data"]["text/plain"]
    for table, title in ((latency, "Latency"), (pacing, "Back to back, and paced"), (events, "History events"),
                         (throughput, "Operations per second")):
        markup = table["data"]["text/html"]
        assert markup.startswith(f"<b>{title}") and "<table" in markup
        assert "nan" not in markup  # the house style: empty cells, not nan
    assert "floor" in latency["data"]["text/html"]
    assert "ActionForm" not in latency["data"]["text/html"]  # the helpers' rows are for the README, not 06


def test_the_decision_table_has_one_column_per_pattern_and_no_index(results):
    styled = view.decision_styled(results)
    assert list(styled.data.columns) == [""] + list(bench.PATTERNS)
    assert "advantages" in list(styled.data[""]) and "seed" not in styled.to_html()
