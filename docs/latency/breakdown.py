"""Issue 18 item 3: where the time goes in one round trip, from history event_time vs the client's clock.

Same machine => time.time() and the server's event_time share a clock (both CLOCK_REALTIME).
For each interaction, runs `--warm` untimed iterations at `--pause` ms (to reach steady state), then
`--n` instrumented ones, and prints per-iteration offsets (ms from the client's send) of each step.

Usage: python breakdown.py [--pause 10] [--warm 30] [--n 5] [--dc KEY=VALUE ...]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from repro import Entity, Trivial, start_server

ET = EventType


def ms(t_event, t0: float) -> float:
    return (t_event.ToNanoseconds() / 1e9 - t0) * 1000


async def new_events(client: Client, wid: str, run_id: str | None, after_id: int):
    h = client.get_workflow_handle(wid, run_id=run_id)
    out = []
    async for e in h.fetch_history_events():
        if e.event_id > after_id:
            out.append(e)
    return out


def fmt(name: str, rows: list[dict]) -> None:
    keys = list(rows[0].keys())
    print(f"\n## {name}  (ms after the client sent the first request; last column = client saw the result)")
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    med = {k: statistics.median([r[k] for r in rows if k in r]) for k in keys
           if isinstance(rows[0][k], float)}
    print("| median | " + " | ".join(f"{med[k]:.1f}" if k in med else "" for k in keys[1:]) + " |")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pause", type=int, default=10)
    ap.add_argument("--warm", type=int, default=30)
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--dc", action="append", default=[])
    a = ap.parse_args()
    proc, address = start_server(a.dc)
    print(f"# breakdown pause={a.pause}ms warm={a.warm} dc={a.dc} loadavg={open('/proc/loadavg').read().split()[:3]}")
    try:
        client = await Client.connect(address)
        tq = "tq-" + uuid.uuid4().hex[:8]
        async with Worker(client, task_queue=tq, workflows=[Entity, Trivial]):
            wid = "entity-" + tq
            h = await client.start_workflow(Entity.run, id=wid, task_queue=tq)
            await h.query(Entity.get)
            counter = [0]

            async def sigquery():
                counter[0] += 1
                v = counter[0]
                await h.signal(Entity.set, v)
                while await h.query(Entity.get) != v:
                    pass

            async def update():
                counter[0] += 1
                await h.execute_update(Entity.bump, counter[0])

            async def startresult():
                await client.execute_workflow(Trivial.run, id="t-" + uuid.uuid4().hex, task_queue=tq)

            async def warm(fn):
                for _ in range(a.warm):
                    await asyncio.sleep(a.pause / 1000)
                    await fn()

            def last_id():
                return last[0]

            last = [0]

            async def sync_last():
                evs = await new_events(client, wid, None, 0)
                last[0] = evs[-1].event_id

            # Instrumented iterations run back-to-back at the same pause (history fetched afterwards,
            # so the limiter's bucket sees the same rhythm as in repro.py).
            def segment(evs, t0s):
                out = [[] for _ in t0s]
                for e in evs:
                    t = e.event_time.ToNanoseconds() / 1e9
                    for i in range(len(t0s) - 1, -1, -1):
                        if t >= t0s[i]:
                            out[i].append(e)
                            break
                return out

            names = {ET.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "Signaled ev",
                     ET.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "Exec Started",
                     ET.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED: "WFT Scheduled",
                     ET.EVENT_TYPE_WORKFLOW_TASK_STARTED: "WFT Started",
                     ET.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "WFT Completed",
                     ET.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "Update Accepted",
                     ET.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED: "Update Completed",
                     ET.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "Exec Completed"}

            def row(i, evs, t0, client_cols, last_name, t_end):
                r = {"iter": i, **client_cols}
                for e in evs:
                    n = names.get(e.event_type)
                    if n and n not in r:
                        r[n] = ms(e.event_time, t0)
                r[last_name] = (t_end - t0) * 1000
                return r

            # --- signal then query
            await warm(sigquery)
            recs = []
            for _ in range(a.n):
                await asyncio.sleep(a.pause / 1000)
                counter[0] += 1
                v = counter[0]
                t0 = time.time()
                await h.signal(Entity.set, v)
                t_acc = time.time()
                nq = 0
                while True:
                    nq += 1
                    if await h.query(Entity.get) == v:
                        break
                recs.append((t0, t_acc, nq, time.time()))
            segs = segment(await new_events(client, wid, None, 0), [r[0] for r in recs])
            rows = [row(i, segs[i], t0, {"signal accepted": (ta - t0) * 1000, "queries": nq}, "visible (client)", te)
                    for i, (t0, ta, nq, te) in enumerate(recs)]
            fmt("signal then query until visible", rows)

            # --- update
            await warm(update)
            recs = []
            for _ in range(a.n):
                await asyncio.sleep(a.pause / 1000)
                counter[0] += 1
                t0 = time.time()
                await h.execute_update(Entity.bump, counter[0])
                recs.append((t0, time.time()))
            segs = segment(await new_events(client, wid, None, 0), [r[0] for r in recs])
            rows = [row(i, segs[i], t0, {}, "result (client)", te) for i, (t0, te) in enumerate(recs)]
            fmt("update round trip (execute_update)", rows)

            # --- start + result
            await warm(startresult)
            recs = []
            for _ in range(a.n):
                await asyncio.sleep(a.pause / 1000)
                t0 = time.time()
                th = await client.start_workflow(Trivial.run, id="t-" + uuid.uuid4().hex, task_queue=tq)
                t_started = time.time()
                await th.result()
                recs.append((th, t0, t_started, time.time()))
            rows = []
            for i, (th, t0, ts, te) in enumerate(recs):
                evs = await new_events(client, th.id, th.result_run_id, 0)
                rows.append(row(i, evs, t0, {"start returned": (ts - t0) * 1000}, "result (client)", te))
            fmt("start + result of a trivial workflow", rows)
            await h.signal(Entity.stop)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
