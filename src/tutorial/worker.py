"""A worker that runs inside the kernel and can be started, stopped and restarted from a cell or a button.

The worker runs as an asyncio task on the kernel's own event loop (`asyncio.create_task(worker.run())`), so
cells and widget callbacks stay responsive while it polls. A `temporalio.worker.Worker` cannot run twice,
so every start builds a new one: a restart is a real restart, and the new worker starts with an empty cache.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from . import metrics
from .errors import WorkbookError, explain
from .workshop import scoped

_controllers: list["WorkerController"] = []
STOP_TIMEOUT_S = 20.0  # a worker that has not shut down by then is cancelled: no hung cell


@dataclass(frozen=True)
class WorkflowLoad:
    """The worker built a workflow object: on the first task, or after the cached one was evicted."""

    at: float
    worker_start: int
    workflow_id: str
    run_id: str
    replaying: bool  # True: the worker re-ran the history to rebuild state it had lost
    history_length: int


class _CacheObserver(Interceptor):
    """Records every time the worker has to build a workflow object, and whether it replayed history to do so.

    A workflow that stays in the cache is built once; every eviction makes the next task build it again
    from the full history. This is the most direct view of the cache we can get.
    """

    def __init__(self, controller: "WorkerController"):
        self.controller = controller

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        controller = self.controller

        class RecordLoads(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                info = workflow.info()
                with workflow.unsafe.sandbox_unrestricted():
                    controller.loads.append(WorkflowLoad(
                        at=time.time(), worker_start=controller.starts, workflow_id=info.workflow_id,
                        run_id=info.run_id, replaying=workflow.unsafe.is_replaying(),
                        history_length=info.get_current_history_length(),
                    ))
                return await super().execute_workflow(input)

        return RecordLoads


@dataclass
class WorkerSettings:
    """What a worker runs and how much it may do at once."""

    task_queue: str
    workflows: Sequence[type] = ()
    activities: Sequence[Callable] = ()
    max_cached_workflows: int = 1000
    max_concurrent_workflow_tasks: int | None = None
    max_concurrent_activities: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # any other Worker(...) keyword


class WorkerController:
    """Start, stop and restart one in-kernel worker; report its state and its cache counters."""

    def __init__(self, client: Client, *, task_queue: str, workflows: Sequence[type] = (),
                 activities: Sequence[Callable] = (), max_cached_workflows: int = 1000,
                 max_concurrent_workflow_tasks: int | None = None, max_concurrent_activities: int | None = None,
                 **extra: Any):
        self.client = client
        self.settings = WorkerSettings(
            task_queue=scoped(task_queue), workflows=list(workflows), activities=list(activities),
            max_cached_workflows=max_cached_workflows,
            max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
            max_concurrent_activities=max_concurrent_activities, extra=extra,
        )
        self.worker: Worker | None = None
        self._task: asyncio.Task | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._started_at: float | None = None
        self.starts = 0
        self.last_error: str | None = None
        self.loads: list[WorkflowLoad] = []
        self.watchers: list[Callable[[], None]] = []  # called after every start and stop (a panel's status line)
        self._shutting_down: asyncio.Future | None = None  # a shutdown that outlived stop()'s time limit
        self._changing: asyncio.Lock | None = None  # one start, stop or restart at a time (see `_one_at_a_time`)
        _controllers.append(self)

    @property
    def task_queue(self) -> str:
        return self.settings.task_queue

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def identity(self) -> str:
        """Name this worker gives the server; history events show it (`WorkflowTaskStarted.identity`)."""
        return f"{self.task_queue}-worker#{self.starts}@pid{os.getpid()}"

    def status(self) -> str:
        """One line for a label: running or stopped, cache size setting, uptime."""
        if self.running:
            up = time.monotonic() - (self._started_at or time.monotonic())
            return (f"worker RUNNING on '{self.task_queue}' (start #{self.starts}, up {up:.0f} s, "
                    f"cache {self.settings.max_cached_workflows} workflows)")
        if self.last_error:
            return f"worker STOPPED after an error: {self.last_error}"
        return f"worker STOPPED ('{self.task_queue}')"

    def _one_at_a_time(self) -> asyncio.Lock:
        """Starts, stops and restarts take turns. Two clicks at once (a panel's Restart while a form's click
        starts the worker it needs) would otherwise each build a Worker: the first one is orphaned, polls for
        ever and is never shut down, and the next start hangs in the core (seen in the browser test)."""
        if self._changing is None:
            self._changing = asyncio.Lock()
        return self._changing

    async def start(self) -> "WorkerController":
        """Start polling; does nothing if already running."""
        async with self._one_at_a_time():
            return await self._start()

    async def _start(self) -> "WorkerController":
        if self.running:
            return self
        if self._shutting_down is not None and not self._shutting_down.done():
            # the last stop gave up waiting: the core still holds that worker, so a new one could not be made
            try:
                await asyncio.wait_for(asyncio.shield(self._shutting_down), STOP_TIMEOUT_S)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - we try to start anyway, and say so if it fails
                pass
        s = self.settings
        if s.activities and self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=s.max_concurrent_activities or 32)
        self.starts += 1
        extra = dict(s.extra)
        interceptors = [_CacheObserver(self), *extra.pop("interceptors", [])]
        for attempt in range(1, 4):
            try:
                self.worker = Worker(
                    self.client, identity=self.identity, task_queue=s.task_queue, workflows=s.workflows,
                    activities=s.activities, activity_executor=self._executor,
                    max_cached_workflows=s.max_cached_workflows,
                    max_concurrent_workflow_tasks=s.max_concurrent_workflow_tasks,
                    max_concurrent_activities=s.max_concurrent_activities,
                    interceptors=interceptors, **extra,
                )
                break
            except RuntimeError as err:  # the core refused: seen while an earlier worker was still shutting down
                if attempt == 3:
                    self.last_error = str(err).splitlines()[0][:200]
                    raise WorkbookError(f"The worker could not start ({explain(err)}); the previous one may still be "
                                        "shutting down: wait a few seconds and click Start worker again.") from None
                await asyncio.sleep(1.0 * attempt)
        self.last_error = None
        self._task = asyncio.create_task(self.worker.run(), name=f"worker {s.task_queue}")
        self._task.add_done_callback(self._on_done)
        self._started_at = time.monotonic()
        await asyncio.sleep(0)  # let run() begin polling before the caller goes on
        self._tell_watchers()
        return self

    def _tell_watchers(self) -> None:
        for watcher in list(self.watchers):
            try:
                watcher()
            except Exception:  # noqa: BLE001 - a broken status line must not break the worker
                pass

    def _on_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.last_error = str(task.exception()).splitlines()[0][:200]

    async def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Shut the worker down and wait until it has; its cache is gone with it.

        A graceful shutdown waits for running activities; one that cannot finish (a thread blocked on a lock)
        would hang the cell, so after `timeout` seconds the worker's task is cancelled instead.
        """
        async with self._one_at_a_time():
            await self._stop(timeout)

    async def _stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        if self.worker is not None and self.running:
            self._shutting_down = asyncio.ensure_future(self.worker.shutdown())
            try:
                await asyncio.wait_for(asyncio.shield(self._shutting_down), timeout)
            except asyncio.TimeoutError:
                self.last_error = f"did not shut down within {timeout:g} s; stopped it"
                if self._task is not None:
                    self._task.cancel()
        if self._task is not None:
            try:
                await self._task
            except (Exception, asyncio.CancelledError):
                pass  # an error is recorded by _on_done; a cancel by stop() itself
        self._task = None
        self.worker = None
        metrics.drain()
        self._tell_watchers()

    async def restart(self, **changes: Any) -> "WorkerController":
        """Stop, apply changed settings (for example max_cached_workflows=1), start again."""
        async with self._one_at_a_time():
            await self._stop()
            for key, value in changes.items():
                if hasattr(self.settings, key):
                    setattr(self.settings, key, value)
                else:
                    self.settings.extra[key] = value
            return await self._start()

    def replays(self, workflow_id: str | None = None) -> int:
        """How many times this controller's workers rebuilt a workflow by replaying its history."""
        return sum(1 for load in self.loads if load.replaying and workflow_id in (None, load.workflow_id))

    def cached_ids(self) -> list[str]:
        """Workflow ids this worker holds in its cache right now ([] when stopped).

        Read from the SDK worker's own table of live workflow objects, which is exact at every moment; the
        metric gauge `temporal_sticky_cache_size` is only reported when it changes, so right after a restart
        it still shows the old worker's value.
        """
        if not self.running or self.worker is None:
            return []
        running = getattr(getattr(self.worker, "_workflow_worker", None), "_running_workflows", None)
        if running is None:  # a future SDK renamed it: fall back to the gauge, without ids
            return ["?"] * int(metrics.gauge(metrics.CACHE_SIZE, self.task_queue))
        return [entry.workflow_id for entry in list(running.values())]

    def cache(self) -> metrics.CacheCounters:
        """The cache counters for this worker (size exact from the worker; replays counted by our interceptor)."""
        counters = metrics.cache_counters(self.task_queue, replays=self.replays())
        return dataclasses.replace(counters, cache_size=len(self.cached_ids()))

    async def __aenter__(self) -> "WorkerController":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def stop_all_workers() -> None:
    """Stop every worker this kernel started (used before stopping the server)."""
    for controller in list(_controllers):
        await controller.stop()
