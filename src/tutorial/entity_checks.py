"""Notebook 02's checks for C9 and C10: each claim decided from what the server shows, by a function that can say no.

- C9, a signal returns nothing: `signal_raw` / `update_raw` send a message as the raw gRPC call and record the
  server's reply and the history's events; `returned_nothing` holds for the signal, not for an update.
- C9, a query cannot change anything that lasts: `change_then_replay` makes a change (by a query, or by a signal),
  empties the worker's cache and reads again; `change_did_not_last` holds for the query, not for the signal.
- C10, timers and cancellation: `ending` describes how a workflow closed; `closed_by_idle_timer` (False when
  activity keeps the account busy) and `cancelled_cleanly` (False when it is terminated instead).
- C10, the source of truth: `rebuilt_from_history` (False when the state held what the history never heard of).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import message_pb2 as update_pb
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest, UpdateWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle

from .entity_signals import history_length, query_until
from .history import decode_payloads, history_frame, short_type
from .polling import until
from .workflows.signal_account import AccountState, SignalAccount


def payloads_in(message: Message) -> int:
    """How many payloads (values) a protobuf message carries, at any depth (headers and maps left out)."""
    if message.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
        return 1
    count = 0
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        for item in (value if field.is_repeated else [value]):
            count += payloads_in(item)
    return count


@dataclass
class MessageRecord:
    """What the server sent back for one message, and what its history recorded about it (C9)."""

    kind: str  # "signal" or "update"
    response_fields: list[str]  # fields set in the raw gRPC response
    response_payloads: int  # values in that response: a result would be one
    history_events: list[str]  # the events the message added
    history_input: list[Any]  # the argument the history recorded
    history_results: int  # values recorded as the message's result


def returned_nothing(record: MessageRecord) -> bool:
    """C9: the sender got nothing back: the server's reply carried no value, and the history recorded the
    message's input but no result. False for an update, whose result travels back through the server."""
    return record.response_payloads == 0 and record.history_results == 0 and bool(record.history_input)


async def _record(client: Client, handle: WorkflowHandle, kind: str, send_it: Callable[[], Any]) -> MessageRecord:
    before = (await handle.describe()).history_length
    response = await send_it()
    events = [e for e in (await handle.fetch_history()).events if e.event_id > before]
    inputs: list[Any] = []
    results = 0
    for event in events:
        if event.HasField("workflow_execution_signaled_event_attributes"):
            inputs += decode_payloads(event.workflow_execution_signaled_event_attributes.input)
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            inputs += decode_payloads(event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args)
        if event.HasField("workflow_execution_update_completed_event_attributes"):
            results += payloads_in(event.workflow_execution_update_completed_event_attributes.outcome)
    return MessageRecord(kind, [f.name for f, _ in response.ListFields()], payloads_in(response),
                         [short_type(e) for e in events], inputs, results)


async def signal_raw(client: Client, handle: WorkflowHandle, name: str, arg: Any) -> MessageRecord:
    """Send a signal as the raw SignalWorkflowExecution call (what `handle.signal` sends) and record it."""
    async def send_it():
        request = SignalWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=handle.id),
            signal_name=name, input=await client.data_converter.encode_wrapper([arg]),
            identity=client.identity, request_id=str(uuid.uuid4()))
        response = await client.workflow_service.signal_workflow_execution(request)
        await handle.query("__stack_trace")  # held until the signal's workflow task is done: its events are in
        return response
    return await _record(client, handle, "signal", send_it)


async def update_raw(client: Client, handle: WorkflowHandle, name: str, arg: Any) -> MessageRecord:
    """Send an update as the raw UpdateWorkflowExecution call, waiting for it to complete, and record it."""
    async def send_it():
        request = UpdateWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=handle.id),
            request=update_pb.Request(meta=update_pb.Meta(update_id=str(uuid.uuid4()), identity=client.identity),
                                      input=update_pb.Input(name=name, args=await client.data_converter.encode_wrapper([arg]))),
            wait_policy=update_pb.WaitPolicy(
                lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED))
        for _ in range(10):  # the server may answer before completion; asking again with the same id is safe
            response = await client.workflow_service.update_workflow_execution(request)
            if response.HasField("outcome"):
                return response
        return response
    return await _record(client, handle, "update", send_it)


@dataclass
class ChangeRecord:
    """A change made one way (`how`), then the worker's cache emptied: did the change survive the replay?"""

    how: str
    before: int  # balance before the change
    changed: int  # balance a query saw right after the change
    history_before: int
    history_after: int
    after_replay: int  # balance once the worker rebuilt the account from its history
    replays: int


def change_did_not_last(record: ChangeRecord) -> bool:
    """C9: the change reached the worker's cache only: it showed, the history did not grow, and after a replay
    it was gone. False for a signal, which is in the history and survives the replay."""
    return (record.changed != record.before and record.history_after == record.history_before
            and record.replays >= 1 and record.after_replay == record.before)


async def change_then_replay(handle: WorkflowHandle, worker: Any, how: str, change: Callable[[], Any],
                             timeout: float = 20.0) -> ChangeRecord:
    """Read the balance, `await change()`, read it again (until it moved), restart `worker` (its cache is
    gone) and read it once more: the next query makes the worker replay the history."""
    before = await handle.query(SignalAccount.balance)
    history_before = await history_length(handle)
    await change()
    changed = (await query_until(handle, SignalAccount.balance, holds=lambda b: b != before, timeout=timeout)).value
    history_after = await history_length(handle)
    replays = worker.replays(handle.id)
    await worker.restart()
    after = (await query_until(handle, SignalAccount.balance, holds=lambda b: True, timeout=timeout)).value
    return ChangeRecord(how, before, changed, history_before, history_after, after, worker.replays(handle.id) - replays)


@dataclass
class Ending:
    """How an account's workflow ended, as the server tells it."""

    status: str
    result: AccountState | None  # None unless it completed
    types: list[str]  # its history's event types
    silence_s: float | None  # server time from the last signal to the timer that fired (None: no timer fired)


async def ending(handle: WorkflowHandle, timeout: float = 30.0) -> Ending:
    """Wait until the workflow has closed (any way), then describe how."""
    seen = await until(handle.describe, lambda d: d.status is not None and d.status.name != "RUNNING",
                       timeout=timeout, gave_up="the workflow did not close")
    status = seen.value.status.name
    result = await handle.result() if status == "COMPLETED" else None
    frame = await history_frame(handle)
    signals = frame.loc[frame["type"] == "WorkflowExecutionSignaled", "time"]
    fired = frame.loc[frame["type"] == "TimerFired", "time"]
    silence = (fired.iloc[-1] - signals.iloc[-1]).total_seconds() if len(fired) and len(signals) else None
    return Ending(status, result, list(frame["type"]), silence)


def closed_by_idle_timer(end: Ending, idle_s: float) -> bool:
    """C10: the entity closed itself with a durable timer: a timer fired at least `idle_s` (server time) after
    the last signal, and the account says it closed for being idle. False when activity kept it busy."""
    return (end.status == "COMPLETED" and "TimerFired" in end.types and end.silence_s is not None
            and end.silence_s >= idle_s and end.result is not None and end.result.closed_reason.startswith("idle"))


def cancelled_cleanly(end: Ending) -> bool:
    """C10: a client's cancellation reached the workflow, which closed the account and completed with its final
    state. False when the workflow is terminated instead (the server just stops it: no code runs, no result)."""
    return (end.status == "COMPLETED" and "WorkflowExecutionCancelRequested" in end.types
            and end.result is not None and end.result.closed_reason == "cancelled by a client")


def rebuilt_from_history(before: Any, after: Any, replays: int) -> bool:
    """C10: the source of truth is the history: after the worker lost its memory (`replays` >= 1), the state it
    rebuilt equals the state before. False when the state held something the history never heard of."""
    return replays >= 1 and after == before
