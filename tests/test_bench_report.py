"""The benchmark's report, on a real (tiny) run: the text has every row, the CSV every figure, notebook 07's
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
                              overload_entities=2, paced_n=2, settle=3, pause_ms=(5, 20))
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
    shown = [label for key, label in bench.LABELS.items() if key not in bench.HELPER_KEYS]  # helpers: README only
    assert list(latency["interaction"]) == shown and "p95_x_floor" in latency
    lines = bench.against_floor(results).splitlines()
    assert len(lines) == len(shown) and all(line.endswith("floors") for line in lines)
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
    assert bench.UNTIL_LIMIT in decision.columns and "changes/s, 2 callers" in decision.columns
    table = decision.set_index("pattern")
    update = table.loc["entity: update (+ update-with-start)"]
    assert update["on an overloaded worker"].endswith("x slower")
    changes, limit = bench.first_limit(results.latency["update"].events_per_op, "update")
    assert update[bench.UNTIL_LIMIT].startswith(f"{changes:,} ({limit.key}:")
    changes, limit = bench.first_limit(results.latency["signal_query"].events_per_op, "signal")
    assert table.loc["entity: signal + query", bench.UNTIL_LIMIT].startswith(f"{changes:,} ({limit.key}:")
    assert table.loc["workflow-per-request + database", bench.UNTIL_LIMIT].startswith("never")
    assert f"{limits.HISTORY_EVENTS_SUGGEST.value:,}-event hint" in \
        decision.set_index("pattern").loc["long-lived entity + continue-as-new", "replay after an eviction"]


def test_both_rhythms_side_by_side_and_the_decision_uses_the_paced_one(results):
    text = bench.as_text(results)
    assert "back to back vs paced" in text and bench.DECISION_WHY in text
    pacing = bench.pacing_table(results)
    assert list(pacing["interaction"]) == [bench.LABELS[k] for k in bench.PACED_KEYS]
    assert list(pacing.columns) == ["interaction", "back to back p50", "back to back p95", "paced p50", "paced p95",
                                    "back to back / paced"]
    decision = bench.decision_table(results).set_index("pattern")
    update = decision.loc["entity: update (+ update-with-start)", "a change (p50, paced)"]
    assert update.startswith(f"{results.paced['update'].p50:.1f} ms"), update
    rows = [r for r in bench.rows(results) if r["section"] == "paced"]
    assert [r["key"] for r in rows] == list(bench.PACED_KEYS) and rows[0]["p50_x_floor"] == 1.0


def test_counterfactual_without_paced_rows_the_decision_uses_back_to_back(results):
    """The check above would fail for a run that measured nothing paced: its table says back to back."""
    bare = dataclasses.replace(results, paced={})
    decision = bench.decision_table(bare).set_index("pattern")
    assert "a change (p50, paced)" not in decision.columns
    cell = decision.loc["entity: update (+ update-with-start)", "a change (p50, back to back)"]
    assert cell.startswith(f"{results.latency['update'].p50:.1f} ms")
    assert "back to back vs paced" not in bench.as_text(bare)


def test_the_round_trips_table_and_rows(results):
    table = bench.round_trip_table(results)
    assert set(table["rhythm"]) == {bench.BACK_TO_BACK, bench.PACED}
    stages = ["to the server", "in a queue", "in the worker", "in the server", "back to the client"]
    assert list(table.columns) == ["interaction", "rhythm", *stages, "total", "median in a queue", "round trips"]
    assert (table[stages].sum(axis=1) - table["total"]).abs().max() < 0.6  # rounded to 0.1 each
    rows = [r for r in bench.rows(results) if r["section"] == "round trip"]
    assert len(rows) == len(results.round_trips) and all("in a queue" in r["note"] for r in rows)
    assert "one round trip, ms" in bench.as_text(results)


def test_what_was_not_measured_says_so(results):
    bare = dataclasses.replace(results, overloaded={}, replay_ms_per_1000=[])
    decision = bench.decision_table(bare).set_index("pattern")
    assert decision.loc["entity: signal + query", "on an overloaded worker"] == "not measured"
    assert decision.loc["entity: signal + query", "replay after an eviction"].startswith("not measured")
    text = bench.as_text(bare)
    assert "replay: p50" not in text and "overloaded worker:" not in text


def test_first_limit_is_the_smaller_of_the_cap_and_the_event_limit():
    assert bench.first_limit(5, "update") == (limits.UPDATES_PER_RUN.value, limits.UPDATES_PER_RUN)
    assert bench.first_limit(4, "signal") == (limits.SIGNALS_PER_RUN.value, limits.SIGNALS_PER_RUN)
    # 51,200 events / 8 events per signal = 6,400 signals: the history is full before the 10,000-signal cap
    assert bench.first_limit(8, "signal") == (limits.HISTORY_EVENTS_MAX.value // 8, limits.HISTORY_EVENTS_MAX)
    # exactly at the tie (51,200 / 5.12 = 10,000) the cap refuses the change first
    assert bench.first_limit(limits.HISTORY_EVENTS_MAX.value / limits.SIGNALS_PER_RUN.value, "signal")[1] \
        is limits.SIGNALS_PER_RUN
    assert bench.first_limit(0, "update") == (limits.UPDATES_PER_RUN.value, limits.UPDATES_PER_RUN)
    with pytest.raises(ValueError):
        bench.first_limit(5, "query")


def test_counterfactual_c15_updates_hit_the_update_cap_before_any_event_limit(results):
    """C15: on the dev server an update adds about 5 events, so an update entity's run meets the 2,000-update cap
    (the 2,001st update is refused) long before the 51,200 events at which the server would terminate it. With a
    hypothetical 30 events per update (an update handler that ran activities, say), 51,200 / 30 = 1,706 updates
    fill the history first, and the check says so."""
    measured = results.latency["update"].events_per_op
    assert measured and measured * limits.UPDATES_PER_RUN.value < limits.HISTORY_EVENTS_MAX.value, measured
    assert bench.update_cap_binds_first(measured), f"{measured} events per update"
    assert limits.HISTORY_EVENTS_MAX.value / 30 < limits.UPDATES_PER_RUN.value  # the variant really is one
    assert not bench.update_cap_binds_first(30)
    assert bench.first_limit(30, "update") == (limits.HISTORY_EVENTS_MAX.value // 30, limits.HISTORY_EVENTS_MAX)
