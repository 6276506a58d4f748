"""Notebook 04's patching check: a *new* run of the patched code records the patch and takes the new path, and
its history no longer replays on the old code. (Old histories replaying on the patched code: `replay.replay_history`.)
The versions are `tutorial.workflows.ledger.Ledger` (V1), `LedgerV2` (incompatible), `LedgerV3` (patched)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType

from .history import short_type
from .replay import ReplayReport, replay_history
from .worker import WorkerController
from .workflows.ledger import Ledger
from .workshop import unique


# A new run of the patched code: the patch marker, the timer, and a history the old code cannot replay.

@dataclass(frozen=True)
class NewRun:
    """A workflow started, fed and closed on a worker that runs `code`, and its history replayed on each version."""

    code: str
    workflow_id: str
    event_types: tuple[str, ...]
    markers: tuple[str, ...]  # MarkerRecorded names ("core_patch" for a `workflow.patched` call)
    balance: int
    reports: dict[str, ReplayReport]  # class name -> what replaying this history on it gave


def patch_guards_new_runs(r: NewRun, old: str = "Ledger", new: str = "LedgerV3") -> bool:
    """A new run of the patched code takes the new path and is protected from the old code: its history records
    the patch marker before the grace-period timer (MarkerRecorded, then TimerStarted), it replays on the patched
    code, and it does not replay on the old code (NondeterminismError), so a rollback cannot silently run it."""
    types = list(r.event_types)
    return ("core_patch" in r.markers and "TimerStarted" in types
            and types.index("MarkerRecorded") < types.index("TimerStarted")
            and r.reports[new].ok and not r.reports[old].ok and r.reports[old].error.startswith("NondeterminismError"))


async def new_run(client, code: type, replay_on: tuple[type, ...], *, deposit: int = 5) -> NewRun:
    """Start a ledger on a fresh worker that runs only `code`, deposit, close it, wait for its result; then replay
    its history against every class of `replay_on` (same workflow type, other versions)."""
    controller = WorkerController(client, task_queue=unique("nb04-new-run"), workflows=[code])
    async with controller:
        handle = await client.start_workflow(code.run, "new", id=unique(f"nb04-new-{code.__name__}"),
                                             task_queue=controller.task_queue)
        await handle.signal(Ledger.deposit, deposit)
        await handle.signal(Ledger.close)
        final = await asyncio.wait_for(handle.result(), 30)
    history = await handle.fetch_history()
    events = list(history.events)
    return NewRun(
        code=code.__name__, workflow_id=handle.id,
        event_types=tuple(short_type(e) for e in events),
        markers=tuple(e.marker_recorded_event_attributes.marker_name for e in events
                      if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED),
        balance=final.balance,
        reports={cls.__name__: await replay_history(history, cls) for cls in replay_on})
