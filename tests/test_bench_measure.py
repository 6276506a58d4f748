"""The measurement, `bench.run`, against the real dev server: every row and cell it promises, the queries each
deposit needed (C11), the first and last request's history (C7), replays, the overloaded worker (C13), its
progress, and no entity left running."""

from __future__ import annotations

import io

import pytest

from tutorial import polling
from tutorial import bench
from tutorial.bench.measure import OVERLOAD_SLOTS, ROUND_TRIP_KEYS

SETTINGS = dict(n=3, warmup=1, concurrency=(1, 2), duration=0.1, overload_reps=2, overload_entities=2, paced_n=3,
                settle=4, pause_ms=(5, 20), seed=18)


@pytest.fixture(scope="module")
def measured(run, client):
    settings = bench.Settings(**SETTINGS)
    progress = bench.TerminalProgress(settings.units(), stream=io.StringIO())
    results = run(bench.run(client, settings, progress=progress, target="test"))
    return results, progress


def test_a_run_records_the_queries_per_deposit_and_the_first_and_last_request_history(measured):
    results, _ = measured
    settings = results.settings
    # one count per deposit of the back-to-back row (its settling calls too)
    assert len(results.signal_queries) == results.settled["signal_query"] + settings.warmup + settings.n
    assert all(results.settled[key] >= settings.settle for key in bench.model.SETTLE_KEYS)
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


def test_every_interaction_is_measured_paced_too_and_its_round_trips_split(measured):
    results, _ = measured
    s = results.settings
    assert list(results.paced) == list(bench.PACED_KEYS)
    assert all(len(lat.samples_ms) == s.paced_n and lat.p50 > 0 for lat in results.paced.values())
    assert set(results.round_trips) == {(rhythm, key) for rhythm in (bench.BACK_TO_BACK, bench.PACED)
                                        for key in ROUND_TRIP_KEYS}
    for (rhythm, key), b in results.round_trips.items():
        assert len(b.parts) == (s.n if rhythm == bench.BACK_TO_BACK else s.paced_n), (rhythm, key)
        for parts in b.parts:  # the stages sum to what the client measured, each stage at least 0 on one machine
            assert parts.total == pytest.approx(parts.trip.ms, abs=0.01)
            assert min(parts.stages.values()) > -1.0, parts.stages
        if key != "signal":  # every other interaction waits for a worker's workflow task
            assert b.typical.stages["in the worker"] > 0 and any(n == "WorkflowTaskCompleted" for n, _ in b.typical.events)


def test_the_helpers_row_records_each_clicks_own_time(measured):
    results, _ = measured
    helper = results.latency["update_helper"]
    assert len(helper.own_ms) == results.settings.n
    assert all(0 < own < total for own, total in zip(helper.own_ms, helper.samples_ms)), helper.own_ms


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
    for phase in ("latency: paced", "latency: floor", "latency: helpers vs raw SDK", "round trips",
                  "throughput: update x 2", "replay",
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
