"""Where one round trip's milliseconds go: the client's clock beside the history's own timestamps (issue 18).

A round trip starts when the client sends its request and ends when it has the answer (`Trip.sent`, `Trip.seen`,
`time.time()`). In between, the history service stamps every event it writes (`event_time`): the request
accepted (signalled, started), each task scheduled, picked up by a worker (started) and completed, the update or
the workflow completed. On one machine both are the same clock, so the round trip splits into `STAGES`:

- **to the server**: from the client's send to the first event of the round trip (gRPC, the frontend, the
  history service persisting the request and scheduling its task);
- **in a queue**: each task from scheduled to started: until a worker's poll got it. A signal's or a start's
  workflow task goes through the history's *transfer queue*, read at most 20 times a second per shard
  (`history.transferProcessorMaxPollRPS`; the dev server has one shard: docs/latency/FINDINGS.md); an update's
  speculative workflow task goes to the matching service directly and never waits there;
- **in the worker**: each task from started to completed (the SDK, the workflow code, the completion's RPC);
- **in the server**: the rest between the first and last event (the history handling a completion, scheduling
  the next task);
- **back to the client**: from the last event to the client's answer (a query held until the task completed and
  then answered by the worker, the update's response, the long poll for a workflow's result).

The stages sum to the client's own time exactly. Server-side stages are differences of server timestamps, true
whatever the clocks; the first and last stage compare the client's clock with the server's, and hold only on one
machine (`same_clock`). Pure client side: `breakdown(client, trips)` fetches the histories and splits each trip.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

STAGES = ("to the server", "in a queue", "in the worker", "in the server", "back to the client")
QUEUED_WAIT_MS = 10.0  # a median wait in a queue above this is a task paced by the read limit, not by matching
# the history's transfer-queue reader: history.transferProcessorMaxPollRPS, 20 reads a second per shard, a token
# bucket holding as many (the server's defaults; the dev server has one shard)
READ_LIMIT_PER_S = 20
READ_LIMIT_BURST = 20
READ_LIMIT_MS = 1000 / READ_LIMIT_PER_S  # back to back, a call that needs one read cannot cycle faster

ET = EventType
_SCHEDULED = {ET.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, ET.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
_STARTED = {ET.EVENT_TYPE_WORKFLOW_TASK_STARTED: "workflow_task_started_event_attributes",
            ET.EVENT_TYPE_ACTIVITY_TASK_STARTED: "activity_task_started_event_attributes"}
_COMPLETED = {ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_task_completed_event_attributes",
              ET.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes"}


@dataclass
class Trip:
    """One round trip as the client saw it: which workflow, and when (`time.time()`) it sent and had the answer."""

    key: str
    workflow_id: str
    sent: float
    seen: float

    @property
    def ms(self) -> float:
        return (self.seen - self.sent) * 1000


@dataclass
class Parts:
    """One round trip split into `STAGES` (ms each), with the events it was split on (`type @ ms after sent`)."""

    trip: Trip
    stages: dict[str, float]
    events: list[tuple[str, float]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.stages.values())


def _at(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e9


def _name(event: HistoryEvent) -> str:
    return "".join(p.capitalize() for p in EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").split("_"))


def split(trip: Trip, events: Iterable[HistoryEvent]) -> Parts:
    """Split `trip` on the events of its workflow stamped between its send and its answer (see `STAGES`)."""
    mine = sorted((e for e in events if trip.sent <= _at(e) <= trip.seen), key=lambda e: (_at(e), e.event_id))
    total = trip.ms
    if not mine:  # nothing written while the client waited (a query): all of it is the round trip to the server
        return Parts(trip, {**dict.fromkeys(STAGES, 0.0), "to the server": total})
    by_id = {e.event_id: e for e in mine}
    queue = worker = 0.0
    for e in mine:
        if e.event_type in _STARTED:
            scheduled = by_id.get(getattr(e, _STARTED[e.event_type]).scheduled_event_id)
            if scheduled is not None:
                queue += (_at(e) - _at(scheduled)) * 1000
        elif e.event_type in _COMPLETED:
            started = by_id.get(getattr(e, _COMPLETED[e.event_type]).started_event_id)
            if started is not None:
                worker += (_at(e) - _at(started)) * 1000
    first, last = _at(mine[0]), _at(mine[-1])
    stages = {"to the server": (first - trip.sent) * 1000, "in a queue": queue, "in the worker": worker,
              "in the server": (last - first) * 1000 - queue - worker,
              "back to the client": (trip.seen - last) * 1000}
    return Parts(trip, stages, [(_name(e), (_at(e) - trip.sent) * 1000) for e in mine])


@dataclass
class Breakdown:
    """The round trips of one interaction in one rhythm, split: `typical` (the one of median length, drawn as a
    bar) and `median(stage)` over all of them (what the checks read)."""

    key: str
    rhythm: str
    parts: list[Parts]

    def median(self, stage: str) -> float:
        return statistics.median(p.stages[stage] for p in self.parts) if self.parts else float("nan")

    @property
    def typical(self) -> Parts:
        ordered = sorted(self.parts, key=lambda p: p.total)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def queue_ms(self) -> float:
        """The median wait in a queue: the part a read limit or a busy worker adds."""
        return self.median("in a queue")


async def breakdown(client: Client, trips: dict[tuple[str, str], list[Trip]]) -> dict[tuple[str, str], Breakdown]:
    """Fetch each workflow's history once and split every trip: {(rhythm, key): Breakdown}."""
    histories: dict[str, list[HistoryEvent]] = {}
    for group in trips.values():
        for trip in group:
            if trip.workflow_id not in histories:
                handle = client.get_workflow_handle(trip.workflow_id)
                histories[trip.workflow_id] = [e async for e in handle.fetch_history_events()]
    return {(rhythm, key): Breakdown(key, rhythm, [split(t, histories[t.workflow_id]) for t in group])
            for (rhythm, key), group in trips.items() if group}


def same_clock(parts: Iterable[Parts], slack_ms: float = 1.0) -> bool:
    """Client and server share a clock (one machine): no round trip's first or last stage is negative."""
    return all(p.stages["to the server"] >= -slack_ms and p.stages["back to the client"] >= -slack_ms for p in parts)


def never_queues(breakdowns: Iterable[Breakdown]) -> bool:
    """Each breakdown's task waited in a queue less than QUEUED_WAIT_MS (median): what an update's does."""
    return all(b.queue_ms < QUEUED_WAIT_MS for b in breakdowns)


def paced_by_the_read_limit(mean_ms: float) -> bool:
    """Back-to-back calls that each need a transfer-queue read take at least about READ_LIMIT_MS on average (90%
    of it): once the limit's bucket is empty, every call waits for the next read. (The mean, not the median: a
    call slowed by the machine leaves a read saved up, so the next one is quick, but the average holds.)"""
    return mean_ms >= 0.9 * READ_LIMIT_MS


def update_skips_the_queue(back_to_back: dict[str, Breakdown]) -> bool:
    """Back to back on one entity, the signal's workflow task waits in the transfer queue (its read limit), the
    update's does not: the signal's median wait is above QUEUED_WAIT_MS and at least three times the update's.

    `back_to_back`: key -> Breakdown of "signal_query" and "update" measured back to back."""
    signal, update = back_to_back["signal_query"].queue_ms, back_to_back["update"].queue_ms
    return signal > QUEUED_WAIT_MS and signal >= 3 * update


def waits_only_back_to_back(breakdowns: dict[tuple[str, str], Breakdown], key: str, back_to_back: str,
                            paced: str) -> bool:
    """`key`'s task waits in a queue back to back (above QUEUED_WAIT_MS) and not when paced (below it)."""
    return breakdowns[(back_to_back, key)].queue_ms > QUEUED_WAIT_MS > breakdowns[(paced, key)].queue_ms


def as_rows(breakdowns: dict[tuple[str, str], Breakdown]) -> list[dict[str, object]]:
    """One row per (interaction, rhythm): the typical round trip's stages in ms, its total, the median wait in a
    queue and how many round trips were split."""
    return [{"key": b.key, "rhythm": b.rhythm, **{s: round(b.typical.stages[s], 1) for s in STAGES},
             "total": round(b.typical.total, 1), "median in a queue": round(b.queue_ms, 1), "round trips": len(b.parts)}
            for b in breakdowns.values()]
