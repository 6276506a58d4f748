"""What a widget needs before it acts, restored when the clean-up cell (or the learner) put it away.

After Run All the notebook's clean-up cell has stopped the worker and closed the accounts, and a learner then
clicks. Each widget lists what it needs; a click restores what is missing and says so in its answer
(`widgets.note`), so it gives a real result instead of a 30-second timeout or "Not found". The checks are
free on the normal path: the worker's state is local, and an entity is only replaced after the server said
it has closed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from .widgets import Need, note
from .workshop import unique

T = TypeVar("T")


def running_worker(controller) -> Need:
    """A need: the worker runs. A stopped one (by the clean-up cell, or the panel) is started again."""
    async def need() -> None:
        if not controller.running:
            await controller.start()
            note("the worker was stopped (the clean-up cell, or Stop worker): started it again")
    return need


def is_closed(err: BaseException) -> bool:
    """The server's answer when a signal or an update reaches a workflow that has closed, or is gone."""
    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


class Reopening:
    """The entity a widget acts on. When the server says it has closed, a fresh one (new id) takes its place.

    `open_fresh(workflow_id)` starts the replacement and returns its handle; `act(call)` runs
    `call(handle)` and, only if the entity turned out closed, opens the fresh one and runs `call` on it.
    """

    def __init__(self, handle: WorkflowHandle, open_fresh: Callable[[str], Awaitable[WorkflowHandle]], *,
                 prefix: str, what: str = "account"):
        self.handle = handle
        self.open_fresh = open_fresh
        self.prefix = prefix
        self.what = what
        self.reopened: list[str] = []  # ids opened in place of closed ones

    @property
    def id(self) -> str:
        return self.handle.id

    async def act(self, call: Callable[[WorkflowHandle], Awaitable[T]]) -> T:
        try:
            return await call(self.handle)
        except Exception as err:  # noqa: BLE001 - anything but "closed" goes to the widget unchanged
            if not is_closed(err):
                raise
        closed = self.handle.id
        self.handle = await self.open_fresh(unique(self.prefix))
        self.reopened.append(self.handle.id)
        note(f"{self.what} {closed} has closed (the clean-up cell closes it): opened {self.handle.id} for you")
        return await call(self.handle)

    def __getattr__(self, name: str) -> Any:  # handle.query(...), handle.describe()... on the current entity
        return getattr(self.handle, name)
