"""The measurement, `bench.run`, against the real dev server: every row and cell it promises, the queries each
deposit needed (C11), the first and last request's history (C7), replays, the overloaded worker (C13), its
progress, and no entity left running."""

from __future__ import annotations

import io

import pytest

from tutorial import polling
from tutorial import bench
from tutorial.bench.measure import OVERLOAD_SLOTS

SETTINGS = dict(n=3, warmup=1, concurrency=(1, 2), duration=0.1, overload_reps=2, overload_entities=2)


@pytest.fixture(scope="module")
def measured(run, client):
    settings = bench.Settings(**SETTINGS)
    progress = bench.TerminalProgress(settings.units(), stream=io.StringIO())
    results = run(bench.run(client, settings, progress=progress, target="test"))
    return results, progress


def test_a_run_records_the_queries_per_deposit_and_the_first_and_last_request_history(measured):
    results, _ = measured
    settings = results.settings
    assert len(results.signal_queries) == settings.warmup + settings.n  # one count per deposit of the latency row
    assert all(q >= 1 for q in results.signal_queries)
    first, last = results.request_history_lengths
    assert first > 0 and last == first, "every workflow-per-request history has the same length"


def test_every_latency_row_and_throughput_cell_is_measured(measured):
    results, _ = measured
    assert list(results.latency) == list(bench.LABELS)
    assert all(len(lat.samples_ms) == results.settings.n and lat.p50 > 0 for lat in results.latency.values())
    assert set(results.throughput) == {(k, c) for k in bench.THROUGHPUT_KEYS for c in (1, 2)}
    assert all(t.ops > 0 and t.errors == 0 for t in results.throughput.values()), results.throughput
    events = results.events_per_op()
    assert events["query"] == 0 and events["update"] > 0 and events["per_request"] > events["update"]
    assert results.target == "test" and "cores" in results.machine and results.seconds > 0


def test_replays_and_the_overloaded_worker_are_recorded(measured):
    results, _ = measured
    assert len(results.replay_events) == len(results.replay_ms) > 0 and results.replay_fixed_ms > 0
    assert results.replay_ms_per_1000 and max(results.replay_per_1000_events) == max(results.replay_events)
    assert set(results.overloaded) == set(bench.OVERLOAD_KEYS)
    for lat in results.overloaded.values():
        assert len(lat.samples_ms) == results.settings.overload_reps
        assert f"max_concurrent_workflow_tasks={OVERLOAD_SLOTS}" in lat.note


def test_the_progress_names_each_phase_and_stays_within_its_total(measured):
    _, progress = measured
    lines = progress.stream.getvalue()
    for phase in ("latency: floor", "latency: helpers vs raw SDK", "throughput: update x 2", "replay",
                  "overloaded worker", "closing entities"):
        assert f"bench: {phase} (" in lines, lines
    assert 0 < progress.done <= progress.total


def test_a_run_leaves_no_entity_running(run, client, measured):
    async def still_running() -> list[str]:
        return [w.id async for w in client.list_workflows("ExecutionStatus='Running'") if "-bench-" in w.id]

    try:  # the list is eventually consistent: give it a few seconds
        run(polling.until(still_running, lambda left: left == [], timeout=10))
    except polling.GaveUp as err:
        left = err.last
        raise AssertionError(left[:5]) from None
