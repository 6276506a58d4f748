"""The benchmark's report, on a real (tiny) run: the text has every row, the CSV every figure, notebook 06's
tables their columns, and the decision table puts each pattern's prose beside the figures."""

from __future__ import annotations

import csv
import dataclasses
import os

import pytest

from tutorial import bench, limits


@pytest.fixture(scope="module")
def results(run, client):
    settings = bench.Settings(n=2, warmup=1, concurrency=(1, 2), duration=0.1, overload_reps=1,
                              overload_entities=2)
    with open(os.devnull, "w") as quiet:
        return run(bench.run(client, settings, progress=bench.TerminalProgress(1, stream=quiet),
                             target="report test"))


def test_the_text_has_every_row(results):
    text = bench.as_text(results)
    assert text.startswith("Temporal interactions, measured side by side (report test; N=2, warm-up 1)")
    for label in bench.LABELS.values():
        assert label in text, label
    assert "1 caller" in text and "2 callers" in text
    assert "helpers: update via ActionForm.submit" in text and "budget" in text and "replay: p50" in text
    assert text.count("overloaded worker:") == len(bench.OVERLOAD_KEYS)


def test_the_csv_has_every_figure(results, tmp_path):
    rows = bench.rows(results)
    sections = [r["section"] for r in rows]
    assert sections.count("latency") == len(bench.LABELS)
    assert sections.count("throughput") == len(bench.THROUGHPUT_KEYS) * 2
    assert sections.count("helpers") == sections.count("replay") == 1
    assert sections.count("overloaded") == len(bench.OVERLOAD_KEYS)
    path = bench.write_csv(results, tmp_path / "out" / "results.csv")
    read = list(csv.DictReader(open(path)))
    assert len(read) == len(rows) and list(read[0]) == list(bench.CSV_FIELDS)
    assert list(bench.frame(results).columns) == list(bench.CSV_FIELDS)


def test_notebook_06s_tables(results):
    latency = bench.latency_table(results)
    assert list(latency["interaction"]) == list(bench.LABELS.values()) and "p95_x_floor" in latency
    lines = bench.against_floor(results).splitlines()
    assert len(lines) == len(bench.LABELS) and all(line.endswith("floors") for line in lines)
    assert lines[0].split()[-2] == "1.0", "the floor is one floor"
    events = bench.events_table(results)
    assert list(events["history events"]) == list(results.events_per_op().values())
    replays = bench.replay_table(results)
    assert list(replays["events"]) == sorted(set(results.replay_events))
    assert replays["replay ms"].iloc[0] == round(min(ms for e, ms in zip(results.replay_events, results.replay_ms)
                                                     if e == replays["events"].iloc[0]), 1)
    throughput = bench.throughput_table(results)
    assert list(throughput.columns) == ["interaction", "1 callers", "2 callers"]
    assert len(throughput) == len(bench.THROUGHPUT_KEYS)


def test_the_decision_table_puts_the_prose_beside_the_figures(results):
    decision = bench.decision_table(results)
    assert list(decision["pattern"]) == list(bench.PATTERNS)
    assert not decision.isna().any().any()
    warning = f"changes until the {limits.HISTORY_EVENTS_WARN.value:,}-event warning"
    assert warning in decision.columns and "changes/s, 2 callers" in decision.columns
    update = decision.set_index("pattern").loc["entity: update (+ update-with-start)"]
    assert update["on an overloaded worker"].endswith("x slower")
    assert float(update[warning].replace(",", "")) > 0
    assert f"{limits.HISTORY_EVENTS_SUGGEST.value:,}-event hint" in \
        decision.set_index("pattern").loc["long-lived entity + continue-as-new", "replay after an eviction"]


def test_what_was_not_measured_says_so(results):
    bare = dataclasses.replace(results, overloaded={}, replay_ms_per_1000=[])
    decision = bench.decision_table(bare).set_index("pattern")
    assert decision.loc["entity: signal + query", "on an overloaded worker"] == "not measured"
    assert decision.loc["entity: signal + query", "replay after an eviction"].startswith("not measured")
    text = bench.as_text(bare)
    assert "replay: p50" not in text and "overloaded worker:" not in text
