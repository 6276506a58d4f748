"""Notebook 06's console: worker B (start, kill, stop gracefully), the deploys of worker A (v2, roll back to v1,
the patched v3), reset of stuck accounts, a deposit to time what a click meets, and a view of it all.

Every button restores what it needs (a running worker A, an open account) and says so; a button that cannot
act (kill a worker that is not running, deploy while B still runs the old release) answers with one line.
"""

from __future__ import annotations

import html
import time

import ipywidgets as ipw
from IPython.display import display
from temporalio.client import Client, WorkflowHandle

from . import open_deploys as od
from . import readiness, widgets
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
        self.view = ipw.HTML("<i>press Refresh view</i>")
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
        await self.b.start()
        await self._refresh()
        return f"worker B polls in process {self.b.pid} (release v1; sticky timeout {self.b.sticky_timeout_s:g} s)"

    async def _kill_b(self) -> str:
        await self.b.kill()
        await self._refresh()
        return "worker B killed with SIGKILL: nothing told the server. Now send a deposit and time it."

    async def _stop_b(self) -> str:
        await self.b.stop()
        await self._refresh()
        return "worker B stopped gracefully (the SDK told the server). Now send a deposit and time it."

    async def _deposit(self) -> str:
        if any(f.nondeterminism for f in await od.task_failures(self.account.handle)):
            raise WorkbookError("The account is stuck (TMPRL1100 in its history): roll back, deploy v3 or reset "
                                "it first. A deposit sent now would wait in its history.")
        async def deposit_on(handle: WorkflowHandle):
            started = time.perf_counter()  # the query meets what the deposit meets (a lost sticky worker too)
            before = (await od.state(handle))["balance"]
            await handle.signal("deposit", 1)  # a closed account answers NOT_FOUND here: a fresh one is opened
            return started, await od.settled_or_stuck(handle, before + 1, timeout=40)

        started, (what, found) = await self.account.act(deposit_on)
        seconds = time.perf_counter() - started
        await self._refresh()
        if what == "stuck":
            return widgets.Caution(f"stuck after {seconds:.2f} s: {self.release} failed to replay the account "
                                   f"({found.message[:90]}); the deposit waits in its history")
        return f"deposit of 1 applied and audited after {seconds:.2f} s: balance {found['balance']}"

    async def _deploy(self, release: str) -> str:
        if self.b.running:
            raise WorkbookError("Worker B still runs v1: stop or kill it first (with both, this is a rolling "
                                "deploy and either worker may take a task).")
        await od.deploy(self.worker, release)
        await self._refresh()
        return f"worker A now runs {release}: open accounts replay on it at their next task"

    async def _reset(self) -> str:
        failures = await od.task_failures(self.account.handle)
        if not any(f.nondeterminism for f in failures):
            return widgets.Caution("the account is not stuck: nothing to reset")
        self.account.handle = await od.reset_to_first_task(self.client, self.account.handle,
                                                           f"reset to run on {self.release}")
        await self._refresh()
        return f"reset: a new run {self.account.handle.run_id[:8]}… runs the rest on {self.release}"

    async def _refresh(self) -> str:
        b_cached = (await self.b.ask())["cached"] if self.b.running else []
        failures = await od.task_failures(self.account.handle)
        rows = [("worker A (in the kernel)", f"{html.escape(self.worker.status())}; release {self.release}; "
                 f"cached: {len(self.worker.cached_ids())}"),
                ("worker B (own process)", f"{html.escape(self.b.status())}; cached: {len(b_cached)}"),
                ("account", f"{html.escape(self.account.id)}; nondeterminism failures in this run: "
                 f"{sum(f.nondeterminism for f in failures)}")]
        self.view.value = "<table style='font-family:monospace'>" + "".join(
            f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows) + "</table>"
        return "view refreshed"

    async def close(self) -> None:
        if self.b.running:
            await self.b.stop()
        await od.close_all([self.account.handle])
