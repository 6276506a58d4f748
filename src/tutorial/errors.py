"""Turn any exception a Temporal call can raise into one short sentence a learner can act on."""

from __future__ import annotations

import asyncio

from temporalio.client import (
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError, FailureError, TemporalError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode


class WorkbookError(Exception):
    """A problem a learner can fix; its message is short and says what to do."""


def _root_message(err: BaseException) -> str:
    """The innermost failure's message: what the workflow, update handler or activity actually said.

    Client errors (WorkflowFailureError, WorkflowUpdateFailedError) carry the failure in `.cause`;
    failures carry theirs in `__cause__`.
    """
    cause = err
    while True:
        inner = getattr(cause, "cause", None) if isinstance(cause, (WorkflowFailureError, WorkflowUpdateFailedError)) \
            else cause.__cause__ if isinstance(cause, FailureError) else None
        if inner is None:
            break
        cause = inner
    if isinstance(cause, ApplicationError):
        return f"{cause.message} ({cause.type})" if cause.type else cause.message
    return str(cause) or type(cause).__name__


def explain(err: BaseException) -> str:
    """A short message for `err`; never a traceback."""
    if isinstance(err, WorkbookError):
        return str(err)
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        return "Timed out: nothing answered in time (is a worker running for this task queue?)."
    if isinstance(err, WorkflowAlreadyStartedError):
        return (f"A workflow with id {err.workflow_id} already exists, or has closed and its id may not be "
                "reused: pick another id, or use the running one.")
    if isinstance(err, WorkflowUpdateRPCTimeoutOrCancelledError):
        return ("No answer to the update in time: it waits in the server until a worker accepts it (no worker "
                "running, or its workflow task keeps failing). Do not send it again, or resend it with the same "
                "update id.")
    if isinstance(err, WorkflowUpdateFailedError):
        return f"Update failed: {_root_message(err)}"
    if isinstance(err, WorkflowQueryRejectedError):
        return f"Query rejected: the workflow is {err.status.name if err.status else 'closed'}."
    if isinstance(err, WorkflowQueryFailedError):
        return f"Query failed: {err.message}"
    if isinstance(err, WorkflowFailureError):
        return f"Workflow failed: {_root_message(err)}"
    if isinstance(err, RPCError):
        if err.status == RPCStatusCode.NOT_FOUND and "already completed" in err.message:
            return "That workflow has closed: it takes no more signals or updates (open a new one)."
        if err.status == RPCStatusCode.NOT_FOUND and "update" in err.message.lower():
            return (f"Not found: {err.message}. The server forgets an update no worker accepted yet when it "
                    "restarts: send it again with the same update id.")
        if err.status == RPCStatusCode.NOT_FOUND:
            return f"Not found: {err.message} (wrong workflow id, or it has closed?)"
        if err.status == RPCStatusCode.ALREADY_EXISTS:
            return f"Already exists: {err.message}"
        if err.status == RPCStatusCode.CANCELLED and "timeout" in err.message.lower():
            return "No worker answered in time (is the worker running for this task queue?)."
        if err.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return "The Temporal server is not reachable. Run the `client = await connect()` cell again."
        if err.status == RPCStatusCode.FAILED_PRECONDITION and "no poller" in err.message:
            return ("No worker has asked this task queue for work lately (\"no poller seen\"), so nobody can answer: "
                    "start the worker, then ask again.")
        if err.status == RPCStatusCode.RESOURCE_EXHAUSTED and "buffer is full" in err.message:
            return "Another query is already waiting for this workflow: ask again in a moment."
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            return f"Invalid request: {err.message}"
        return f"Server said {err.status.name}: {err.message}"
    if isinstance(err, TemporalError):
        return _root_message(err)
    if isinstance(err, ValueError):  # the workbook's own checks: the message is the sentence
        return str(err)
    if isinstance(err, (TypeError, KeyError)):
        return f"{type(err).__name__}: {err}"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if len(lines) > 1 and lines[-1] != lines[0]:  # the core's errors say the cause last ("Caused by: ...")
        return f"{type(err).__name__}: {lines[0][:120]} ({lines[-1][:160]})"
    return f"{type(err).__name__}: {lines[0][:200] if lines else ''}"
