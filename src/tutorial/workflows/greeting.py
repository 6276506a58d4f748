"""Workflows for notebook 00 (how Temporal runs your code) and the setup check.

`Greet` is the smallest useful workflow: one activity, one result. `Counter` stays open and takes signals,
so we can watch the worker keep its state in the cache between tasks.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def compose_greeting(name: str) -> str:
    """An activity: the place for anything that touches the outside world."""
    return f"Hello, {name}!"


@workflow.defn
class Greet:
    """Asks an activity for a greeting and returns it."""

    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            compose_greeting, name, start_to_close_timeout=timedelta(seconds=10)
        )


@workflow.defn
class Counter:
    """Holds a number in memory until told to finish. Each `add` signal reaches the worker in a workflow task
    (signals that arrive close together, or while a task still waits, share one)."""

    def __init__(self) -> None:
        self.value = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.value

    @workflow.signal
    def add(self, amount: int) -> None:
        self.value += amount

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def current(self) -> int:
        return self.value
