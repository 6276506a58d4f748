"""A worker in its own OS process, so a notebook can kill it for real (SIGKILL) or stop it gracefully.

    python -m tutorial.remote_worker --address 127.0.0.1:7233 --namespace default --task-queue Q \
        --workflows tutorial.workflows.signal_account:WORKFLOWS [--activities MODULE:NAME] [--sticky-timeout 2]

It talks to its parent in JSON lines: on stdout `{"ready": {...}}` once polling, `{"load": {...}}` each time it
builds a workflow object (with `replaying`), and `{"status": {...}}` in answer to a `status` line on stdin;
`stop` on stdin (or SIGTERM) shuts it down gracefully, as a deploy would. `tutorial.worker_process` is the
parent's side. It dies with its parent (PR_SET_PDEATHSIG), like the embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import json
import os
import signal
import sys
from datetime import timedelta

from temporalio.client import Client

from . import connection
from .worker import WorkerController


def load(spec: str) -> list:
    """`module:NAME` -> the list (or single object) it names, as a list."""
    module_name, _, attr = spec.partition(":")
    found = getattr(importlib.import_module(module_name), attr)
    return list(found) if isinstance(found, (list, tuple)) else [found]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tutorial.remote_worker", description=__doc__.splitlines()[0])
    p.add_argument("--address", help="default: the SDK's environment configuration (TEMPORAL_ADDRESS, profiles...)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--task-queue", required=True)
    p.add_argument("--workflows", action="append", default=[], help="module:NAME of a workflow class or list")
    p.add_argument("--activities", action="append", default=[], help="module:NAME of an activity or list")
    p.add_argument("--sticky-timeout", type=float, default=None,
                   help="sticky_queue_schedule_to_start_timeout in seconds (the Python Worker's default is 10)")
    return p


def say(kind: str, value) -> None:
    print(json.dumps({kind: value}), flush=True)


async def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.address:
        client = await Client.connect(args.address, namespace=args.namespace)
    else:
        target = connection.configured()
        if target is None:
            raise SystemExit("remote_worker: no --address and no Temporal server configured (TEMPORAL_ADDRESS)")
        client = await Client.connect(target.address, namespace=target.namespace, **target.connect_args)
    extra = {}
    if args.sticky_timeout is not None:
        extra["sticky_queue_schedule_to_start_timeout"] = timedelta(seconds=args.sticky_timeout)
    workflows = [w for spec in args.workflows for w in load(spec)]
    activities = [a for spec in args.activities for a in load(spec)]
    controller = WorkerController(client, task_queue=args.task_queue, workflows=workflows, activities=activities,
                                  **extra)
    await controller.start()
    say("ready", {"identity": controller.identity, "task_queue": controller.task_queue})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def read_commands() -> None:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            if line == "status":
                say("status", {"identity": controller.identity, "running": controller.running,
                               "cached": controller.cached_ids(), "replays": controller.replays(),
                               "loads": len(controller.loads)})
            elif line == "stop":
                break
        stop.set()  # "stop", or the parent closed our stdin (it is gone)

    parent = os.getppid()

    async def report_loads() -> None:
        told = 0
        while True:
            if os.getppid() != parent:  # the parent is gone (killed): stop, whatever else happens
                stop.set()
            for entry in controller.loads[told:]:
                say("load", dataclasses.asdict(entry))
            told = len(controller.loads)
            await asyncio.sleep(0.02)

    tasks = [asyncio.ensure_future(read_commands()), asyncio.ensure_future(report_loads())]
    await stop.wait()
    try:  # bounded: with the server gone too (a killed kernel), a graceful shutdown could wait for ever
        await asyncio.wait_for(controller.stop(timeout=5), 10)
    except Exception:  # noqa: BLE001 - we leave anyway
        pass
    for task in tasks:
        task.cancel()
    try:
        say("stopped", {"identity": controller.identity})
    except OSError:
        pass  # nobody reads our stdout any more
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)  # never linger in interpreter teardown after the worker stopped: this process must not outlive its parent
