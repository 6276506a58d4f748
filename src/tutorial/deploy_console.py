"""Notebook 06's console: worker B (start, kill, stop gracefully), the deploys of worker A (v2, roll back to v1,
the patched v3), reset of stuck accounts, a deposit to time what a click meets, and notebook 04's cache board for
both workers (an account leaves a killed worker B's cache and worker A replays it).

Every button restores what it needs (a running worker A, an open account) and says so; a button that cannot
act (kill a worker that is not running, deploy while B still runs the old release) answers with one line.
"""

from __future__ import annotations

import time

import ipywidgets as ipw
from IPython.display import display
from temporalio.client import Client, WorkflowHandle

from . import open_deploys as od
from . import readiness, widgets
from .boards import WorkerRow, WorkersBoard
from .errors import WorkbookError
from .worker import WorkerController
from .worker_process import WorkerProcess
from .workflows import audited_account as aa

B_WORKFLOWS = ["tutorial.workflows.audited_account:AuditedV1"]
B_ACTIVITIES = ["tutorial.workflows.audited_account:ACTIVITIES"]


class DeployConsole:
    def __init__(self, client: Client, worker: WorkerController, account: WorkflowHandle, *,
                 sticky_timeout_s: float = 2.0):
        self.client = client
        self.worker = worker
        self.b = WorkerProcess(worker.task_queue, B_WORKFLOWS, B_ACTIVITIES, sticky_timeout_s=sticky_timeout_s)
        self.account = readiness.Reopening(account, self._open_account, prefix="nb06-console", what="account")
        self.board = WorkersBoard({"worker A (in the kernel)": self._read_a, "worker B (own process)": self._read_b},
                                  names={account.id: "the account"})
        self.view = self.board.widget
        need_a = [readiness.running_worker(worker)]
        self.messages = ipw.Output(layout=ipw.Layout(width="100%"))  # one answer line for every button
        kinds = {"Start worker B": ("success", self._start_b, ()), "Kill worker B": ("danger", self._kill_b, ()),
                 "Stop worker B": ("warning", self._stop_b, ()), "Send a deposit": ("primary", self._deposit, need_a),
                 "Refresh view": ("info", self._refresh, ()),
                 "Deploy v2": ("primary", lambda: self._deploy("v2"), need_a),
                 "Roll back to v1": ("primary", lambda: self._deploy("v1"), need_a),
                 "Deploy v3 (patched)": ("primary", lambda: self._deploy("v3"), need_a),
                 "Reset stuck accounts": ("primary", self._reset, need_a)}
        self.buttons = {label: widgets.ActionButton(label, action, button_style=style, needs=needs, timeout=60,
                                                    output=self.messages)
                        for label, (style, action, needs) in kinds.items()}
        rows = [["Start worker B", "Kill worker B", "Stop worker B"], ["Send a deposit", "Refresh view"],
                ["Deploy v2", "Roll back to v1", "Deploy v3 (patched)", "Reset stuck accounts"]]
        self.widget = ipw.VBox([ipw.HBox([self.buttons[n].button for n in row]) for row in rows]
                               + [self.messages, self.view])

    def _ipython_display_(self) -> None:
        display(self.widget)

    @property
    def release(self) -> str:
        """The release worker A runs now (whoever deployed it: a cell or a button)."""
        running = self.worker.settings.workflows
        return next((name for name, cls in aa.RELEASES.items() if cls in running), "?")

    async def _open_account(self, workflow_id: str) -> WorkflowHandle:
        handle = await self.client.start_workflow(aa.WORKFLOW_NAME, workflow_id, id=workflow_id,
                                                  task_queue=self.worker.task_queue)
        return handle

    async def _start_b(self) -> str:
        """Start worker B and make it hold the account: worker A pauses for one deposit, so B takes the account's
        task and keeps it in its cache (its sticky queue), which is what a crash of B is about."""
        if self.b.running:
            return widgets.Caution(f"worker B already polls in process {self.b.pid}")
        await self.b.start()
        await self.worker.stop()
        try:
            _, (what, _) = await self.account.act(self._deposit_one)
        finally:
            await self.worker.start()
        await self._refresh("start B, deposit through B")
        held = "holds the account" if what == "settled" else "could not take the account (stuck?)"
        return (f"worker B polls in process {self.b.pid} (release v1; sticky timeout {self.b.sticky_timeout_s:g} s) "
                f"and {held}: worker A paused for one deposit")

    async def _kill_b(self) -> str:
        await self.b.kill()
        await self._refresh("kill B")
        return "worker B killed with SIGKILL: nothing told the server. Now send a deposit and time it."

    async def _stop_b(self) -> str:
        await self.b.stop()
        await self._refresh("stop B")
        return "worker B stopped gracefully (the SDK told the server). Now send a deposit and time it."

    async def _deposit(self) -> str:
        if any(f.nondeterminism for f in await od.task_failures(self.account.handle)):
            raise WorkbookError("The account is stuck (TMPRL1100 in its history): roll back, deploy v3 or reset "
                                "it first. A deposit sent now would wait in its history.")
        started, (what, found) = await self.account.act(self._deposit_one)
        seconds = time.perf_counter() - started
        await self._refresh(f"deposit ({seconds:.2f} s)")
        if what == "stuck":
            return widgets.Caution(f"stuck after {seconds:.2f} s: {self.release} failed to replay the account "
                                   f"({found.message[:90]}); the deposit waits in its history")
        return f"deposit of 1 applied and audited after {seconds:.2f} s: balance {found['balance']}"

    @staticmethod
    async def _deposit_one(handle: WorkflowHandle) -> tuple[float, tuple[str, object]]:
        started = time.perf_counter()  # the query meets what the deposit meets (a lost sticky worker too)
        before = (await od.state(handle))["balance"]
        await handle.signal("deposit", 1)  # a closed account answers NOT_FOUND here: a fresh one is opened
        return started, await od.settled_or_stuck(handle, before + 1, timeout=40)

    async def _deploy(self, release: str) -> str:
        if self.b.running:
            raise WorkbookError("Worker B still runs v1: stop or kill it first (with both, this is a rolling "
                                "deploy and either worker may take a task).")
        await od.deploy(self.worker, release)
        await self._refresh(f"deploy {release}")
        return f"worker A now runs {release}: open accounts replay on it at their next task"

    async def _reset(self) -> str:
        if (await self.account.handle.describe()).status.name != "RUNNING":
            return widgets.Caution("the account is closed, not stuck: nothing to reset (Temporal would reset it "
                                   "anyway, into a new open run: not done here)")
        failures = await od.task_failures(self.account.handle)
        if not any(f.nondeterminism for f in failures):
            return widgets.Caution("the account is not stuck: nothing to reset")
        self.account.handle = await od.reset_to_first_task(self.client, self.account.handle,
                                                           f"reset to run on {self.release}")
        await self._refresh("reset")
        return f"reset: a new run {self.account.handle.run_id[:8]}… runs the rest on {self.release}"

    async def _read_a(self) -> WorkerRow:
        state = f"running {self.release}" if self.worker.running else "stopped"
        return WorkerRow(state, tuple(self.worker.cached_ids()), self.worker.replays())

    async def _read_b(self) -> WorkerRow:
        if not self.b.running:
            return WorkerRow(self.b.status().removeprefix("worker B ").lower(), (), self.b.replays())
        report = await self.b.ask()
        return WorkerRow(f"running v1 (process {self.b.pid})", tuple(report["cached"]), self.b.replays())

    async def _refresh(self, step: str = "refresh") -> str:
        failures = await od.task_failures(self.account.handle)
        self.board.names[self.account.id] = "the account"  # a fresh account after the clean-up too
        await self.board.refresh(f"{step} (account: {sum(f.nondeterminism for f in failures)} TMPRL1100 "
                                 f"failures in this run)" if failures else step)
        return "view refreshed"

    async def close(self) -> None:
        if self.b.running:
            await self.b.stop()
        await od.close_all([self.account.handle])
