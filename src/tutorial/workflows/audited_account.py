"""Notebook 06's entity, in five releases: an account whose every deposit is audited by an activity.

Entities stay open for months, so a deploy always meets open executions, and the new worker rebuilds each one
by replaying its history with the NEW code. Every release below has the same workflow type ("AuditedAccount");
only what happens after a deposit changes:

- `AuditedV1`: apply the deposit, then the `audit` activity.
- `AuditedV2`, incompatible: a `notify` activity BEFORE the audit. A v1 history says "audit" where v2 asks for
  "notify": replaying it fails with TMPRL1100, and the workflow is stuck until a compatible release runs it.
- `AuditedV3`, the patch: `if workflow.patched("notify-first")` notify. Old histories (no marker) take the old
  path; new deposits record the marker and notify first.
- `AuditedV4`, the patch deprecated (`workflow.deprecate_patch`): always notify. Only histories that took the
  patched path (or started after it) replay; v1-era histories without the marker no longer do.
- `AuditedV5`, the patch removed: plain code, once no open execution needs the old path.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

WORKFLOW_NAME = "AuditedAccount"
PATCH = "notify-first"
STEP_TIMEOUT = timedelta(seconds=10)


@activity.defn
async def audit(entry: str) -> str:
    return f"audited {entry}"


@activity.defn
async def notify(entry: str) -> str:
    return f"notified {entry}"


ACTIVITIES = [audit, notify]


class _Account:
    """What every release shares: the balance, the deposit signal, the close signal, the state query."""

    @workflow.init
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.balance = 0
        self.pending: list[int] = []
        self.steps: list[str] = []  # the activities' answers, in order: what the history recorded
        self.closing = False

    @workflow.signal
    def deposit(self, amount: int) -> None:
        self.pending.append(amount)

    @workflow.signal
    def close(self) -> None:
        self.closing = True

    @workflow.query
    def state(self) -> dict:
        return {"account_id": self.account_id, "balance": self.balance, "steps": list(self.steps),
                "pending": len(self.pending)}

    async def _step(self, fn, entry: str) -> None:
        self.steps.append(await workflow.execute_activity(fn, entry, start_to_close_timeout=STEP_TIMEOUT))

    async def after_deposit(self, entry: str) -> None:  # each release says what follows a deposit
        raise NotImplementedError

    async def _serve(self) -> dict:
        while True:
            await workflow.wait_condition(lambda: bool(self.pending) or self.closing)
            if not self.pending:
                return self.state()
            amount = self.pending[0]
            self.balance += amount
            await self.after_deposit(f"deposit {amount}")
            self.pending.pop(0)  # only now: a query shows the deposit pending until its steps are done


@workflow.defn(name=WORKFLOW_NAME)
class AuditedV1(_Account):
    @workflow.run
    async def run(self, account_id: str) -> dict:
        return await self._serve()

    async def after_deposit(self, entry: str) -> None:
        await self._step(audit, entry)


@workflow.defn(name=WORKFLOW_NAME)
class AuditedV2(_Account):
    @workflow.run
    async def run(self, account_id: str) -> dict:
        return await self._serve()

    async def after_deposit(self, entry: str) -> None:
        await self._step(notify, entry)  # INCOMPATIBLE: v1 histories have an audit here
        await self._step(audit, entry)


@workflow.defn(name=WORKFLOW_NAME)
class AuditedV3(_Account):
    @workflow.run
    async def run(self, account_id: str) -> dict:
        return await self._serve()

    async def after_deposit(self, entry: str) -> None:
        if workflow.patched(PATCH):  # False while replaying a deposit recorded without the marker
            await self._step(notify, entry)
        await self._step(audit, entry)


@workflow.defn(name=WORKFLOW_NAME)
class AuditedV4(_Account):
    @workflow.run
    async def run(self, account_id: str) -> dict:
        return await self._serve()

    async def after_deposit(self, entry: str) -> None:
        workflow.deprecate_patch(PATCH)  # every execution that still runs took the patched path
        await self._step(notify, entry)
        await self._step(audit, entry)


@workflow.defn(name=WORKFLOW_NAME)
class AuditedV5(_Account):
    @workflow.run
    async def run(self, account_id: str) -> dict:
        return await self._serve()

    async def after_deposit(self, entry: str) -> None:
        await self._step(notify, entry)
        await self._step(audit, entry)


RELEASES = {"v1": AuditedV1, "v2": AuditedV2, "v3": AuditedV3, "v4": AuditedV4, "v5": AuditedV5}
