"""A workflow's event history, as a table people can read, a timeline chart, and a link to the Web UI.

The history is what the server persisted: every request, task, signal, update, activity and timer, in order.
It is also exactly what a worker replays after losing a workflow from its cache (notebook 04).
Queries never appear in it: they read state and leave no trace.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pandas as pd
from temporalio.api.common.v1 import Payloads
from IPython.display import HTML
from temporalio.api.enums.v1 import (EventType, PendingWorkflowTaskState, TaskQueueKind, TaskQueueType,
                                      WorkflowTaskFailedCause)
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle

from .server import server_info
from .tables import tidy

def short_type(event: HistoryEvent) -> str:
    """EVENT_TYPE_WORKFLOW_TASK_STARTED -> WorkflowTaskStarted."""
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def category(event_type: str) -> str:
    if event_type.startswith("WorkflowTask"):
        return "workflow task"
    if event_type.startswith("ActivityTask"):
        return "activity"
    if "Signal" in event_type:
        return "signal"
    if "Update" in event_type:
        return "update"
    if event_type.startswith("Timer"):
        return "timer"
    if event_type.startswith("WorkflowExecution"):
        return "workflow"
    return "other"


def decode_payloads(payloads: Payloads | None) -> list[Any]:
    """JSON payloads to Python values (anything else shown by its encoding)."""
    if payloads is None:
        return []
    values = []
    for payload in payloads.payloads:
        encoding = payload.metadata.get("encoding", b"").decode()
        if encoding == "json/plain":
            values.append(json.loads(payload.data))
        elif encoding == "binary/null":
            values.append(None)
        else:
            values.append(f"<{encoding}, {len(payload.data)} bytes>")
    return values


def _args(payloads: Payloads | None) -> str:
    text = ", ".join(json.dumps(v) if not isinstance(v, str) or not v.startswith("<") else v
                     for v in decode_payloads(payloads))
    return text if len(text) <= 120 else text[:117] + "..."


def summary(event: HistoryEvent) -> str:
    """One readable line about an event: names, arguments, results, who did it."""
    kind = event.WhichOneof("attributes")
    a = getattr(event, kind) if kind else None
    t = short_type(event)
    if t == "WorkflowExecutionStarted":
        return f"{a.workflow_type.name}({_args(a.input)}) on queue '{a.task_queue.name}'"
    if t == "WorkflowTaskScheduled":
        sticky = (" (sticky: the queue of the worker that had this workflow cached)"
                  if a.task_queue.kind == TaskQueueKind.TASK_QUEUE_KIND_STICKY else "")
        return f"queue '{a.task_queue.name}'{sticky}, attempt {a.attempt}"
    if t in ("WorkflowTaskStarted", "ActivityTaskStarted"):
        return f"picked up by {a.identity}"
    if t == "WorkflowTaskFailed":
        cause = WorkflowTaskFailedCause.Name(a.cause).removeprefix("WORKFLOW_TASK_FAILED_CAUSE_")
        return f"{cause}: {a.failure.message[:140]}" if a.failure.message else cause
    if t == "WorkflowExecutionSignaled":
        return f"signal {a.signal_name}({_args(a.input)})"
    if t == "WorkflowExecutionUpdateAccepted":
        return f"update {a.accepted_request.input.name}({_args(a.accepted_request.input.args)})"
    if t == "WorkflowExecutionUpdateCompleted":
        outcome = a.outcome
        if outcome.HasField("failure"):
            return f"update failed: {outcome.failure.message[:120]}"
        return f"update returned {_args(outcome.success)}"
    if t == "WorkflowExecutionUpdateAdmitted":
        return f"update {a.request.input.name}({_args(a.request.input.args)}) admitted"
    if t == "ActivityTaskScheduled":
        return f"{a.activity_type.name}({_args(a.input)})"
    if t == "ActivityTaskCompleted":
        return f"returned {_args(a.result)}"
    if t == "ActivityTaskFailed":
        return f"failed: {a.failure.message[:160]}"
    if t == "TimerStarted":
        return f"timer {a.timer_id} for {a.start_to_fire_timeout.ToTimedelta()}"
    if t == "TimerFired":
        return f"timer {a.timer_id} fired"
    if t == "WorkflowExecutionCompleted":
        return f"result {_args(a.result)}"
    if t == "WorkflowExecutionFailed":
        return f"failed: {a.failure.message[:160]}"
    if t == "WorkflowExecutionContinuedAsNew":
        return f"continued as new run {a.new_execution_run_id}, input {_args(a.input)}"
    if t == "MarkerRecorded":
        return f"marker {a.marker_name}"
    if t == "WorkflowExecutionTerminated":
        return f"terminated: {a.reason}"
    if t == "WorkflowExecutionCancelRequested":
        return f"cancel requested: {a.cause}"
    return ""


def events_frame(events: list[HistoryEvent]) -> pd.DataFrame:
    """Events as a DataFrame: id, time, milliseconds since the first event, type, category, summary."""
    rows = []
    first = None
    for event in events:
        when = event.event_time.ToDatetime()
        first = first or when
        t = short_type(event)
        rows.append({
            "id": event.event_id,
            "time": when,
            "ms": round((when - first).total_seconds() * 1000, 1),
            "type": t,
            "category": category(t),
            "summary": summary(event),
        })
    return pd.DataFrame(rows, columns=["id", "time", "ms", "type", "category", "summary"])


async def history_frame(handle: WorkflowHandle) -> pd.DataFrame:
    """Fetch a workflow's history from the server and return it as a DataFrame."""
    history = await handle.fetch_history()
    return events_frame(list(history.events))


async def event_types(handle: WorkflowHandle) -> list[str]:
    """Just the short event types, in order (handy for asserts)."""
    return list((await history_frame(handle))["type"])


def styled(frame: pd.DataFrame, columns: list[str] | None = None):
    """The history table for display, in the house table style (`widgets.tidy`): summaries read like sentences."""
    return tidy(frame, columns or [c for c in frame.columns if c not in ("time", "category")])


def ui_url(workflow_id: str, run_id: str | None = None) -> str | None:
    """The Web UI page of a workflow, or None when no UI address is known."""
    info = server_info()
    if not info.ui_url:
        return None
    url = f"{info.ui_url.rstrip('/')}/namespaces/{quote(info.namespace)}/workflows/{quote(workflow_id)}"
    return f"{url}/{run_id}/history" if run_id else url


def ui_link(handle: WorkflowHandle):
    """An HTML link to the workflow in the Web UI (shown as a clickable link in a notebook)."""
    url = ui_url(handle.id, handle.result_run_id or handle.run_id)
    if url is None:
        return HTML("<i>No Web UI address known: set TEMPORAL_UI_URL.</i>")
    return HTML(f'<a href="{url}" target="_blank">Open {handle.id} in the Temporal Web UI</a>')


async def pending_task(client: Client, handle: WorkflowHandle) -> dict[str, Any]:
    """What the server says about the workflow task it holds for this workflow (if any)."""
    description = await handle.describe()
    raw = description.raw_description
    pending = raw.pending_workflow_task if raw.HasField("pending_workflow_task") else None
    return {
        "status": description.status.name if description.status else None,
        "task waiting": pending is not None,
        "task state": PendingWorkflowTaskState.Name(pending.state).removeprefix("PENDING_WORKFLOW_TASK_STATE_")
        if pending else None,
        "attempt": pending.attempt if pending else None,
        "history length": description.history_length,
    }


async def pollers(client: Client, task_queue: str) -> list[str]:
    """Identities of the workers polling a task queue for workflow tasks right now (as the server sees it)."""
    response = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    ))
    return [poller.identity for poller in response.pollers]
