"""Where one round trip's time goes (`tutorial.round_trips`): the split on known events, and on the real dev
server the claim notebook 07 asserts (back to back, a signal's workflow task waits in the transfer queue, an
update's does not) beside its counterfactual: the same measurement on a server whose read limit is raised."""

from __future__ import annotations

import statistics

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from tutorial import round_trips, server
from tutorial.bench.measure import split_round_trips
from tutorial.round_trips import STAGES, Trip

ET = EventType
T0 = 1_800_000_000.0  # the client's send, seconds (time.time())


def event(event_id: int, kind: int, ms: float, **ids: int) -> HistoryEvent:
    e = HistoryEvent(event_id=event_id, event_type=kind)
    e.event_time.FromNanoseconds(int((T0 + ms / 1000) * 1e9))
    attributes = {ET.EVENT_TYPE_WORKFLOW_TASK_STARTED: e.workflow_task_started_event_attributes,
                  ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: e.workflow_task_completed_event_attributes,
                  ET.EVENT_TYPE_ACTIVITY_TASK_STARTED: e.activity_task_started_event_attributes,
                  ET.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: e.activity_task_completed_event_attributes}.get(kind)
    for name, value in ids.items():
        setattr(attributes, name, value)
    return e


def signal_then_query(queue_ms: float) -> list[HistoryEvent]:
    """A signal's round trip as the history writes it: signalled at 2 ms, the task waits `queue_ms`, runs 8 ms."""
    return [event(10, ET.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, 2.0),
            event(11, ET.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 2.1),
            event(12, ET.EVENT_TYPE_WORKFLOW_TASK_STARTED, 2.1 + queue_ms, scheduled_event_id=11),
            event(13, ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, 10.1 + queue_ms, scheduled_event_id=11,
                  started_event_id=12)]


def test_a_round_trip_splits_into_stages_that_sum_to_the_clients_time():
    trip = Trip("signal_query", "wf", T0, T0 + 0.050)
    parts = round_trips.split(trip, signal_then_query(35.0))
    assert list(parts.stages) == list(STAGES)
    assert parts.stages == pytest.approx({"to the server": 2.0, "in a queue": 35.0, "in the worker": 8.0,
                                          "in the server": 0.1, "back to the client": 4.9}, abs=1e-3)
    assert parts.total == pytest.approx(trip.ms) and [n for n, _ in parts.events][0] == "WorkflowExecutionSignaled"


def test_only_the_events_written_while_the_client_waited_count():
    earlier = [event(3, ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, -20.0, scheduled_event_id=1, started_event_id=2)]
    later = [event(20, ET.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED, 60.0)]
    trip = Trip("signal_query", "wf", T0, T0 + 0.050)
    parts = round_trips.split(trip, earlier + signal_then_query(35.0) + later)
    assert len(parts.events) == 4 and parts.stages["in a queue"] == pytest.approx(35.0, abs=1e-3)
    query = round_trips.split(Trip("query", "wf", T0, T0 + 0.006), [])  # a query writes nothing
    assert query.stages["to the server"] == pytest.approx(6.0, abs=1e-3) and query.total == pytest.approx(6.0, abs=1e-3)


def test_an_activity_counts_as_a_task_too():
    events = [event(5, ET.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 1.0),
              event(6, ET.EVENT_TYPE_ACTIVITY_TASK_STARTED, 4.0, scheduled_event_id=5),
              event(7, ET.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, 9.0, scheduled_event_id=5, started_event_id=6)]
    parts = round_trips.split(Trip("per_request", "wf", T0, T0 + 0.010), events)
    assert parts.stages["in a queue"] == pytest.approx(3.0, abs=1e-3)
    assert parts.stages["in the worker"] == pytest.approx(5.0, abs=1e-3)


def test_a_breakdown_reads_the_median_and_draws_the_typical_trip():
    parts = [round_trips.split(Trip("signal_query", "wf", T0, T0 + (12 + q) / 1000), signal_then_query(q))
             for q in (1.0, 40.0, 30.0)]
    b = round_trips.Breakdown("signal_query", "back to back", parts)
    assert b.queue_ms == pytest.approx(30.0, abs=1e-3) and b.typical is parts[2]
    assert round_trips.same_clock(parts)
    behind = round_trips.Parts(parts[0].trip, {**parts[0].stages, "to the server": -3.0})  # the server's clock late
    assert not round_trips.same_clock([behind]), "a server clock behind the client's shows as a negative stage"


def test_the_checks_on_known_breakdowns():
    def breakdown(key: str, queue_ms: float) -> round_trips.Breakdown:
        trip = Trip(key, "wf", T0, T0 + (12 + queue_ms) / 1000)
        return round_trips.Breakdown(key, "r", [round_trips.split(trip, signal_then_query(queue_ms))])

    assert round_trips.update_skips_the_queue({"signal_query": breakdown("signal_query", 35),
                                               "update": breakdown("update", 1)})
    assert not round_trips.update_skips_the_queue({"signal_query": breakdown("signal_query", 3),
                                                   "update": breakdown("update", 1)})
    assert not round_trips.update_skips_the_queue({"signal_query": breakdown("signal_query", 35),
                                                   "update": breakdown("update", 20)})
    both = {("b2b", "signal_query"): breakdown("signal_query", 35), ("paced", "signal_query"): breakdown("s", 2)}
    assert round_trips.waits_only_back_to_back(both, "signal_query", "b2b", "paced")
    assert not round_trips.waits_only_back_to_back(both, "signal_query", "paced", "b2b")


# ---- on the real dev server

@pytest.fixture(scope="module")
def default_server(run, client):
    """The session's dev server: the server's own defaults (transferProcessorMaxPollRPS 20, one shard)."""
    return run(split_round_trips(client, n=8, settle=20))


def test_back_to_back_a_signal_then_query_is_paced_by_the_read_limit_and_an_update_never_queues(default_server):
    signal, update = default_server["signal_query"], default_server["update"]
    cycle = statistics.mean(p.total for p in signal.parts)
    print(f"back to back: signal then query {cycle:.1f} ms (mean), its task waited {signal.queue_ms:.1f} ms (median), the "
          f"update's {update.queue_ms:.1f} ms")
    assert round_trips.paced_by_the_read_limit(cycle), cycle
    assert not round_trips.never_queues([signal]), "the signal's task waits in the transfer queue"
    assert round_trips.never_queues([update])
    assert round_trips.same_clock(signal.parts + update.parts)


def test_counterfactual_with_the_read_limit_raised_the_signals_task_does_not_wait(run):
    """The variant where the claim is false: the same back-to-back round trips on a dev server started with
    `history.transferProcessorMaxPollRPS=1000` (docs/latency/FINDINGS.md). The signal's task no longer waits
    in the transfer queue (`never_queues` says True, where on the default server it says False): the wait the
    notebook shows in red is the server's read limit, not the signal."""
    raised = server.EmbeddedServer(dynamic_config={"history.transferProcessorMaxPollRPS": 1000})
    info = run(raised.start())
    try:
        other = run(server.connect_to(info))
        split = run(split_round_trips(other, n=8, settle=20))
    finally:
        raised.stop()
    signal, update = split["signal_query"], split["update"]
    cycle = statistics.mean(p.total for p in signal.parts)
    print(f"read limit raised: signal then query {cycle:.1f} ms, its task waited {signal.queue_ms:.1f} ms (median), "
          f"the update's {update.queue_ms:.1f} ms")
    assert round_trips.never_queues([signal]), "nothing holds the signal's task now"
    # and, unless the machine is so busy that the loop itself is slower than 50 ms, the cycle is faster too
    print(f"paced by the read limit: {round_trips.paced_by_the_read_limit(cycle)}")


def test_paced_the_signals_task_does_not_wait(run, client):
    paced = run(split_round_trips(client, ("signal_query", "update"), n=6, paced=True))
    print(f"paced: signal's task waited {paced['signal_query'].queue_ms:.1f} ms, the update's "
          f"{paced['update'].queue_ms:.1f} ms")
    assert round_trips.never_queues(paced.values())
