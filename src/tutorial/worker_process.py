"""The parent's side of a worker in its own OS process (`tutorial.remote_worker`): start it, kill it for real,
stop it gracefully, and read what it reports (identity, workflow loads and replays, cache contents).

An in-kernel worker cannot be SIGKILLed without killing the kernel; this one can, which is what a crash is.
It never outlives the kernel: it gets SIGTERM when the kernel dies (PR_SET_PDEATHSIG), is killed at exit, and
its stdin closing makes it stop.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import WorkbookError
from .server import die_with_parent, server_info
from .workshop import scoped, state_dir

READY_TIMEOUT_S = 30.0
_alive: list["WorkerProcess"] = []


@dataclass
class Load:
    """The process built a workflow object: first task, or after an eviction (replaying=True)."""

    at: float
    workflow_id: str
    replaying: bool
    history_length: int


@dataclass
class WorkerProcess:
    """One `python -m tutorial.remote_worker` child on `task_queue`, running `workflows` (module:NAME specs)."""

    task_queue: str
    workflows: list[str]
    activities: list[str] = field(default_factory=list)
    sticky_timeout_s: float | None = None
    name: str = "B"

    def __post_init__(self) -> None:
        self.task_queue = scoped(self.task_queue)
        self.process: asyncio.subprocess.Process | None = None
        self.identity: str | None = None
        self.loads: list[Load] = []
        self.exit_code: int | None = None
        self.stopped_at: float | None = None
        self._statuses: asyncio.Queue = asyncio.Queue()
        self._reader: asyncio.Task | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def status(self) -> str:
        if self.running:
            return f"worker {self.name} RUNNING in process {self.pid} ({self.identity})"
        if self.exit_code is None:
            return f"worker {self.name} not started"
        how = "killed (SIGKILL)" if self.exit_code == -signal.SIGKILL else f"exited ({self.exit_code})"
        return f"worker {self.name} STOPPED: {how}"

    async def start(self) -> "WorkerProcess":
        """Start the child and wait until it polls (a short message if it cannot)."""
        if self.running:
            return self
        info = server_info()
        args = [sys.executable, "-m", "tutorial.remote_worker", "--task-queue", self.task_queue]
        if info.embedded:  # an external server: the child reads the same environment configuration itself
            args += ["--address", info.address, "--namespace", info.namespace]
        args += [a for spec in self.workflows for a in ("--workflows", spec)]
        args += [a for spec in self.activities for a in ("--activities", spec)]
        if self.sticky_timeout_s is not None:
            args += ["--sticky-timeout", str(self.sticky_timeout_s)]
        self.loads, self.identity, self.exit_code = [], None, None
        self.log_path = state_dir() / f"worker-{self.name}-{self.task_queue}.log"  # its stderr: never a full pipe
        with open(self.log_path, "ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)
        _alive.append(self)
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._reader = asyncio.ensure_future(self._read(ready))
        try:
            self.identity = (await asyncio.wait_for(asyncio.shield(ready), READY_TIMEOUT_S))["identity"]
        except (asyncio.TimeoutError, EOFError):
            if self.running:
                self.process.kill()
            await self._finish()
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
            raise WorkbookError(f"Worker {self.name} did not start: "
                                f"{lines[-1][:200] if lines else 'no answer in time'} (log: {self.log_path})") from None
        return self

    async def _read(self, ready: asyncio.Future) -> None:
        assert self.process and self.process.stdout
        while line := await self.process.stdout.readline():
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            kind, value = next(iter(message.items()))
            if kind == "ready" and not ready.done():
                ready.set_result(value)
            elif kind == "load":
                self.loads.append(Load(value["at"], value["workflow_id"], value["replaying"], value["history_length"]))
            elif kind == "status":
                self._statuses.put_nowait(value)
        if not ready.done():
            ready.set_exception(EOFError())
        self.exit_code = await self.process.wait()
        self.stopped_at = self.stopped_at or time.monotonic()

    async def ask(self) -> dict[str, Any]:
        """The child's own report: identity, running, cached workflow ids, replays, loads."""
        if not self.running:
            raise WorkbookError(f"{self.status()}: start it first.")
        self.process.stdin.write(b"status\n")
        await self.process.stdin.drain()
        return await asyncio.wait_for(self._statuses.get(), 10)

    async def kill(self) -> float:
        """SIGKILL: what a crash, an OOM kill or a lost machine look like to Temporal. Returns when it is gone."""
        if not self.running:
            raise WorkbookError(f"{self.status()}: there is no running worker {self.name} to kill.")
        self.stopped_at = time.monotonic()
        self.process.kill()
        await self._finish()
        return self.stopped_at

    async def stop(self, timeout: float = 20.0) -> float:
        """A graceful stop (stdin `stop`): the SDK shuts the worker down as a deploy's SIGTERM would."""
        if not self.running:
            raise WorkbookError(f"{self.status()}: there is no running worker {self.name} to stop.")
        self.stopped_at = time.monotonic()
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        try:
            await asyncio.wait_for(self._finish(), timeout)
        except asyncio.TimeoutError:
            self.process.kill()
            await self._finish()
        return self.stopped_at

    async def _finish(self) -> None:
        self.exit_code = await self.process.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        if self in _alive:
            _alive.remove(self)

    def replays(self, workflow_id: str | None = None) -> int:
        return sum(1 for load in self.loads if load.replaying and workflow_id in (None, load.workflow_id))


def _kill_all() -> None:
    for child in list(_alive):
        if child.process is not None and child.process.returncode is None:
            try:
                os.kill(child.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


atexit.register(_kill_all)
