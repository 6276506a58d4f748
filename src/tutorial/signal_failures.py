"""What an exception in a signal handler does (issue 13, item 4), decided from what the server shows.

Measured on the dev server with `FragileAccount` (`tutorial.workflows.signal_handlers`):
- an `ApplicationError` raised in a signal handler **fails the whole workflow**: status FAILED, history ends in
  WorkflowExecutionFailed (`failed_the_workflow`);
- any other exception **fails the workflow task**: WorkflowTaskFailed in the history, the status stays RUNNING,
  and the worker retries the task (its attempt counter climbs) with the same signal, failing again each time: a
  wedged workflow that answers no query, until the code is fixed or someone terminates it (`wedged_retrying`).
`SignalAccount` (notebook 02's account) rejects a bad payload instead, so neither happens to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from temporalio.client import Client, WorkflowHandle

from .history import history_frame, pending_task
from .polling import until
from .workflows.signal_handlers import FragileAccount, FragileConfig

BAD_PAYLOAD = {"amount": "ten"}


@dataclass
class AfterBadSignal:
    """A workflow once a bad signal reached its handler."""

    workflow: str
    status: str
    task_attempt: int | None  # attempt of the workflow task the server holds (None: no task pending)
    frame: pd.DataFrame  # its history

    @property
    def types(self) -> list[str]:
        return list(self.frame["type"])


def _settled(task: dict[str, Any], types: list[str]) -> bool:
    if task["status"] != "RUNNING":
        return True
    if (task["attempt"] or 0) >= 2:  # the failed task was retried
        return True
    after = types[len(types) - 1 - types[::-1].index("WorkflowExecutionSignaled"):] if \
        "WorkflowExecutionSignaled" in types else []
    return "WorkflowTaskCompleted" in after and not task["task waiting"]


async def bad_signal(client: Client, handle: WorkflowHandle, signal: str = "deposit", arg: Any = BAD_PAYLOAD, *,
                     timeout: float = 30.0) -> AfterBadSignal:
    """Send `signal(arg)` and wait until the workflow has dealt with it: closed, a failed task retried, or a task
    completed after the signal with nothing pending."""
    await handle.signal(signal, arg)

    async def look():
        return await pending_task(client, handle), list((await history_frame(handle))["type"])

    seen = await until(look, lambda r: _settled(*r), timeout=timeout, gave_up="the workflow did not settle")
    task = seen.value[0]
    return AfterBadSignal(handle.id, task["status"], task["attempt"], await history_frame(handle))


async def start_fragile(client: Client, workflow_id: str, *, task_queue: str, raise_as: str) -> WorkflowHandle:
    """A `FragileAccount`, its first workflow task done."""
    handle = await client.start_workflow(FragileAccount.run, FragileConfig(workflow_id, raise_as=raise_as),
                                         id=workflow_id, task_queue=task_queue)
    await handle.query(FragileAccount.balance)
    return handle


def failed_the_workflow(r: AfterBadSignal) -> bool:
    """Item 4: the exception failed the whole workflow: FAILED, and the history ends in WorkflowExecutionFailed."""
    return r.status == "FAILED" and r.types[-1] == "WorkflowExecutionFailed"


def wedged_retrying(r: AfterBadSignal) -> bool:
    """Item 4: the exception failed the workflow task, not the workflow: still RUNNING, WorkflowTaskFailed in the
    history, and the server holds the task again for another attempt (attempt >= 2)."""
    return r.status == "RUNNING" and "WorkflowTaskFailed" in r.types and (r.task_attempt or 0) >= 2
