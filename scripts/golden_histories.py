"""Record the golden histories in tests/golden/: one closed execution of each entity the workbook deploys
over, exported as the CLI and the Web UI export them (`WorkflowHistory.to_json`).

    .venv/bin/python scripts/golden_histories.py

tests/test_golden_histories.py replays each against today's code with no server: the habit notebook 06
teaches (replay real histories before you deploy), kept by the repository itself. Re-record only on purpose:
a golden history that stops replaying means today's code would break executions recorded by older code.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tutorial import entity_updates as eu
from tutorial import server
from tutorial.entity_signals import send
from tutorial.worker import WorkerController
from tutorial.workflows import audited_account as aa
from tutorial.workflows import ledger
from tutorial.workflows import signal_account as sa
from tutorial.workflows import update_account as ua
from tutorial.workflows.signal_account import payload
from tutorial.workflows.update_account import UpdateAccount
from tutorial.workshop import unique

GOLDEN = Path(__file__).parent.parent / "tests" / "golden"


async def record(handle, name: str) -> None:
    await handle.result()
    history = await handle.fetch_history()
    GOLDEN.mkdir(parents=True, exist_ok=True)
    (GOLDEN / f"{name}.json").write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
    print(f"wrote {name}.json ({len(history.events)} events)")


async def main() -> None:
    client = await server.connect(quiet=True)
    queue = unique("golden")

    async with WorkerController(client, task_queue=queue, workflows=[aa.AuditedV1], activities=aa.ACTIVITIES):
        h = await client.start_workflow(aa.WORKFLOW_NAME, "golden", id=unique("golden-audited-v1"), task_queue=queue)
        for amount in (10, 5):
            await h.signal("deposit", amount)
        await asyncio.sleep(1)
        await h.signal("close")
        await record(h, "audited_account_v1")

    async with WorkerController(client, task_queue=queue, workflows=[aa.AuditedV3], activities=aa.ACTIVITIES):
        h = await client.start_workflow(aa.WORKFLOW_NAME, "golden", id=unique("golden-audited-v3"), task_queue=queue)
        await h.signal("deposit", 7)
        await asyncio.sleep(1)
        await h.signal("close")
        await record(h, "audited_account_v3")

    async with WorkerController(client, task_queue=queue, workflows=ua.WORKFLOWS, activities=ua.ACTIVITIES):
        _, h = await eu.deposit_with_start(client, unique("golden-update"), 100, queue)
        await h.execute_update(UpdateAccount.withdraw, 30)
        await h.execute_update(UpdateAccount.close)
        await record(h, "update_account")

    async with WorkerController(client, task_queue=queue, workflows=sa.WORKFLOWS, activities=sa.ACTIVITIES):
        h = await send(client, unique("golden-signal"), "deposit", payload(50), task_queue=queue)
        await h.signal(sa.SignalAccount.withdraw, payload(20))
        await asyncio.sleep(0.5)
        await h.signal(sa.SignalAccount.close, "golden")
        await record(h, "signal_account")

    async with WorkerController(client, task_queue=queue, workflows=[ledger.Ledger]):
        h = await client.start_workflow(ledger.Ledger.run, "golden", id=unique("golden-ledger"), task_queue=queue)
        await h.signal(ledger.Ledger.deposit, 3)
        await h.signal(ledger.Ledger.close)
        await record(h, "ledger_v1")
    server.stop_server()


if __name__ == "__main__":
    asyncio.run(main())
