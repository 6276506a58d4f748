"""Issue 18 repro: latency of Temporal interactions vs pause between iterations.

Starts its own `temporal server start-dev` (in-memory SQLite) on free ports, a worker in this process,
and measures p50/p95 per (operation, pause). Conditions are interleaved in shuffled rounds.

Usage: python repro.py [--iters 30] [--rounds 3] [--pauses 0,5,10,...] [--ops rpc,signal,...]
                       [--dc KEY=VALUE ...] [--polls N] [--sticky-ratio R] [--no-sticky-cache]
                       [--spin] [--json out.json] [--address host:port (use existing server)]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta

from temporalio import workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.worker import Worker

TEMPORAL = "/work/main/.venv/bin/temporal"


@workflow.defn
class Entity:
    def __init__(self) -> None:
        self.value = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.value

    @workflow.signal
    def set(self, v: int) -> None:
        self.value = v

    @workflow.signal
    def stop(self) -> None:
        self.done = True

    @workflow.query
    def get(self) -> int:
        return self.value

    @workflow.update
    def bump(self, v: int) -> int:
        self.value = v
        return v


@workflow.defn
class Trivial:
    @workflow.run
    async def run(self) -> int:
        return 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(dc: list[str], db: str | None = None) -> tuple[subprocess.Popen, str]:
    port, ui = free_port(), free_port()
    args = [TEMPORAL, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port),
            "--ui-port", str(ui), "--log-level", "error"]
    if db:
        args += ["--db-filename", db]
    for kv in dc:
        args += ["--dynamic-config-value", kv]
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return p, f"127.0.0.1:{port}"
        time.sleep(0.05)
    p.kill()
    raise RuntimeError("server did not start")


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def spinner(stop: threading.Event) -> None:
    # keep one core busy (no GIL release needed: pure loop, but sleep(0) to let others run)
    while not stop.is_set():
        for _ in range(10000):
            pass


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=30, help="iterations per (op,pause) in total")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pauses", default="0,5,10,20,30,50,100,200")
    ap.add_argument("--ops", default="rpc,sysinfo,signal,sigquery,query,update,startresult")
    ap.add_argument("--dc", action="append", default=[])
    ap.add_argument("--polls", type=int, default=None, help="max_concurrent_workflow_task_polls")
    ap.add_argument("--sticky-ratio", type=float, default=None)
    ap.add_argument("--no-sticky-cache", action="store_true", help="max_cached_workflows=0 (no sticky queue)")
    ap.add_argument("--spin", action="store_true", help="busy-spin thread in this process")
    ap.add_argument("--json", default=None)
    ap.add_argument("--address", default=None)
    ap.add_argument("--db", default=None)
    ap.add_argument("--label", default="")
    ap.add_argument("--warm", type=int, default=1, help="untimed iterations at the same pause before each condition's timed ones (reach steady state)")
    a = ap.parse_args()

    pauses = [int(x) for x in a.pauses.split(",")]
    ops = a.ops.split(",")
    proc = None
    if a.address:
        address = a.address
    else:
        proc, address = start_server(a.dc, a.db)
    stop_spin = threading.Event()
    if a.spin:
        threading.Thread(target=spinner, args=(stop_spin,), daemon=True).start()
    try:
        for attempt in range(50):
            try:
                client = await Client.connect(address)
                break
            except RuntimeError:
                await asyncio.sleep(0.2)
        tq = "tq-" + uuid.uuid4().hex[:8]
        wkw: dict = {}
        if a.polls is not None:
            wkw["max_concurrent_workflow_task_polls"] = a.polls
        if a.sticky_ratio is not None:
            wkw["nonsticky_to_sticky_poll_ratio"] = a.sticky_ratio
        if a.no_sticky_cache:
            wkw["max_cached_workflows"] = 0
        async with Worker(client, task_queue=tq, workflows=[Entity, Trivial], **wkw):
            h = await client.start_workflow(Entity.run, id="entity-" + tq, task_queue=tq)
            await h.query(Entity.get)  # wait until first task processed
            counter = [0]

            async def op_rpc():
                await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))

            async def op_sysinfo():
                await client.workflow_service.get_system_info(GetSystemInfoRequest())

            async def op_signal():
                counter[0] += 1
                await h.signal(Entity.set, counter[0])

            async def op_sigquery():
                counter[0] += 1
                v = counter[0]
                await h.signal(Entity.set, v)
                while await h.query(Entity.get) != v:
                    pass

            async def op_query():
                await h.query(Entity.get)

            async def op_update():
                counter[0] += 1
                await h.execute_update(Entity.bump, counter[0])

            async def op_startresult():
                await client.execute_workflow(Trivial.run, id="t-" + uuid.uuid4().hex, task_queue=tq)

            fns = {"rpc": op_rpc, "sysinfo": op_sysinfo, "signal": op_signal, "sigquery": op_sigquery,
                   "query": op_query, "update": op_update, "startresult": op_startresult}
            # warmup
            for o in ops:
                for _ in range(3):
                    await fns[o]()
            res: dict[tuple[str, int], list[float]] = {(o, p): [] for o in ops for p in pauses}
            per_round = max(1, -(-a.iters // a.rounds))
            for r in range(a.rounds):
                conds = [(o, p) for o in ops for p in pauses]
                random.shuffle(conds)
                for o, p in conds:
                    fn = fns[o]
                    for _ in range(a.warm):  # un-timed iterations at the same pause: steady state, not the burst
                        if p:
                            await asyncio.sleep(p / 1000)
                        await fn()
                    for _ in range(per_round):
                        if p:
                            await asyncio.sleep(p / 1000)
                        t0 = time.perf_counter()
                        await fn()
                        res[(o, p)].append((time.perf_counter() - t0) * 1000)
            await h.signal(Entity.stop)
    finally:
        stop_spin.set()
        if proc:
            proc.terminate()
            proc.wait(10)

    load = open("/proc/loadavg").read().split()[:3]
    print(f"# {a.label} dc={a.dc} polls={a.polls} sticky_ratio={a.sticky_ratio} no_sticky={a.no_sticky_cache} "
          f"spin={a.spin} warm={a.warm} n/cond={per_round * a.rounds} loadavg={' '.join(load)}")
    print("p50/p95 ms".ljust(12) + "".join(f"{('pause ' + str(p)):>14}" for p in pauses))
    for o in ops:
        row = o.ljust(12)
        for p in pauses:
            xs = res[(o, p)]
            row += f"{pct(xs, .5):7.1f}/{pct(xs, .95):<6.1f}"
        print(row)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"label": a.label, "args": vars(a), "load": load,
                       "res": {f"{o}|{p}": v for (o, p), v in res.items()}}, f)


if __name__ == "__main__":
    asyncio.run(main())
