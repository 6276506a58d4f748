"""The room, measured: `python -m tutorial.room_bench` runs each notebook for N learners at once against one dev
server and reports what a room costs (issue 16). Each learner is a real kernel running the whole notebook
(`jupyter execute`), with its own learner prefix and state folder, as a learner's JupyterLab would.

Per notebook and N: Run All time p50/p95 (against N=1, alone), failures, and what the server paid: frontend
RPCs per learner (the server's own `service_requests` counter, polls included), history events written per
learner (from the histories), the peak events written per second, and the server's share of the machine's CPU.
The figures are for the README's sizing table; the command is a benchmark, never a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import re
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from temporalio.client import Client

from .errors import WorkbookError, explain
from .server import EmbeddedServer, connect_to

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
CELL_TIMEOUT_S = 600
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SETTLE_S = 2.5  # the server reports its counters every second, and visibility lags the histories a little


def notebooks(wanted: str = "") -> list[Path]:
    """The learner notebooks (00-07), or those whose number is in `wanted` ("00,02")."""
    every = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not wanted:
        return every
    numbers = [n.strip().zfill(2) for n in wanted.split(",") if n.strip()]
    chosen = [p for p in every if p.name[:2] in numbers]
    unknown = sorted(set(numbers) - {p.name[:2] for p in chosen})
    if unknown:
        raise WorkbookError(f"No notebook numbered {', '.join(unknown)}: choose from "
                            f"{', '.join(p.name[:2] for p in every)}.")
    return chosen


def learner_counts(text: str) -> list[int]:
    try:
        counts = [int(n) for n in text.split(",") if n.strip()]
    except ValueError:
        raise WorkbookError(f"--learners must be whole numbers separated by commas, e.g. 1,2,4,8 (got {text!r})") from None
    if not counts or min(counts) < 1 or max(counts) > 50:
        raise WorkbookError(f"--learners: between 1 and 50 learners per run (got {text!r})")
    return counts


@dataclass
class LearnerRun:
    learner: str
    seconds: float
    ok: bool
    error: str = ""


@dataclass
class RoomRun:
    """One notebook run by `n` learners at once."""

    notebook: str
    n: int
    learners: list[LearnerRun] = field(default_factory=list)
    wall_s: float = 0.0
    rpcs: float = 0.0  # frontend RPCs during the run, all learners
    events: int = 0  # history events the learners' workflows hold
    peak_events_s: int = 0  # the most events written in one second
    server_cpu: float = 0.0  # the server's share of the whole machine (all cores) during the run

    @property
    def failures(self) -> int:
        return sum(not r.ok for r in self.learners)

    def seconds(self, q: float) -> float:
        times = sorted(r.seconds for r in self.learners)
        return times[min(len(times) - 1, round(q * (len(times) - 1)))]


class MeteredServer:
    """The room's one dev server, with its Prometheus endpoint, so the run can read what the server did."""

    def __init__(self, state: Path):
        self.server = EmbeddedServer(log_path=state / "room-server.log")

    def rpcs(self) -> float:
        """Frontend requests so far (every client and worker call, polls included)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.server.metrics_port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("service_requests{") and 'service_name="frontend"' in line)

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far."""
        fields = Path(f"/proc/{self.server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


async def run_learner(notebook: Path, learner: str, address: str, state: Path) -> LearnerRun:
    """One learner's Run All of `notebook` in a fresh kernel against the room's server."""
    env = {**os.environ, "TEMPORAL_ADDRESS": address, "TEMPORAL_NAMESPACE": "default",
           "WORKBOOK_LEARNER": learner, "WORKBOOK_STATE_DIR": str(state / learner)}
    env.pop("TEMPORAL_UI_URL", None)
    jupyter = Path(sys.executable).parent / "jupyter"
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        str(jupyter), "execute", f"--timeout={CELL_TIMEOUT_S}", str(notebook), cwd=notebook.parent, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    seconds = time.perf_counter() - started
    if process.returncode == 0:
        return LearnerRun(learner, seconds, True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", output.decode(errors="replace"))  # the traceback's colours
    lines = [line for line in text.splitlines() if re.match(r"\w*(Error|Exception): ", line)]
    return LearnerRun(learner, seconds, False, (lines[-1] if lines else f"exit code {process.returncode}")[:200])


async def written(client: Client, prefixes: list[str]) -> tuple[int, int]:
    """(events, peak events in one second) of every workflow whose id starts with one of `prefixes`."""
    per_second: Counter = Counter()
    events = 0
    for prefix in prefixes:
        async for execution in client.list_workflows(f"WorkflowId STARTS_WITH '{prefix}'"):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            async for event in handle.fetch_history_events():
                events += 1
                per_second[event.event_time.seconds] += 1
    return events, max(per_second.values(), default=0)


async def run_room(metered: MeteredServer, client: Client, notebook: Path, n: int, state: Path) -> RoomRun:
    """`n` learners run `notebook` at once."""
    learners = [f"room{n}-{notebook.name[:2]}-{i:02d}" for i in range(1, n + 1)]
    await asyncio.sleep(SETTLE_S)
    rpcs, cpu, started = metered.rpcs(), metered.cpu_s(), time.perf_counter()
    runs = await asyncio.gather(*(run_learner(notebook, who, metered.server.info.address, state) for who in learners))
    wall = time.perf_counter() - started
    cpu = metered.cpu_s() - cpu
    await asyncio.sleep(SETTLE_S)
    room = RoomRun(notebook.name, n, list(runs), wall, metered.rpcs() - rpcs)
    room.server_cpu = cpu / wall / (os.cpu_count() or 1)
    room.events, room.peak_events_s = await written(client, [f"{who}-" for who in learners])
    return room


def rows(rooms: list[RoomRun]) -> list[dict]:
    """The report: one row per notebook and N, with the slowdown against the same notebook alone."""
    alone = {r.notebook: r.seconds(0.5) for r in rooms if r.n == 1}
    out = []
    for r in rooms:
        base = alone.get(r.notebook)
        out.append({
            "notebook": r.notebook[:2], "learners": r.n, "p50 s": round(r.seconds(0.5), 1),
            "p95 s": round(r.seconds(0.95), 1),
            "p50 vs alone": f"{r.seconds(0.5) / base:.2f}x" if base else "",
            "failures": r.failures, "RPCs per learner": round(r.rpcs / r.n),
            "events per learner": round(r.events / r.n), "peak events/s": r.peak_events_s,
            "server CPU": f"{100 * r.server_cpu:.0f}%",
        })
    return out


def markdown(table: list[dict]) -> str:
    head = list(table[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(row[k]) for k in head) + " |" for row in table]
    return "\n".join(lines)


async def measure(paths: list[Path], counts: list[int], out: Path, *, say=print) -> list[RoomRun]:
    out.mkdir(parents=True, exist_ok=True)
    metered = MeteredServer(out)
    await metered.server.start()
    try:
        client = await connect_to(metered.server.info)
        rooms = []
        for path in paths:
            for n in counts:
                say(f"{path.name}: {n} learner(s) at once ...")
                room = await run_room(metered, client, path, n, out)
                for run in room.learners:
                    if not run.ok:
                        say(f"  {run.learner} FAILED after {run.seconds:.0f} s: {run.error}")
                rooms.append(room)
        return rooms
    finally:
        metered.server.stop()


def write(rooms: list[RoomRun], out: Path) -> Path:
    table = rows(rooms)
    with open(out / "room.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    with open(out / "learners.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["notebook", "n", *asdict(rooms[0].learners[0])])
        for r in rooms:
            for run in r.learners:
                writer.writerow([r.notebook, r.n, *asdict(run).values()])
    return out / "room.csv"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tutorial.room_bench", description=__doc__.splitlines()[0])
    p.add_argument("--learners", default="1,2,4,8", help="how many learners at once, each count in turn (1,2,4,8)")
    p.add_argument("--notebooks", default="", help="notebook numbers, e.g. 00,02 (default: 00-07)")
    p.add_argument("--out", default="build/room", help="where room.csv and learners.csv go")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        paths, counts = notebooks(args.notebooks), learner_counts(args.learners)
        started = time.perf_counter()
        rooms = asyncio.run(measure(paths, counts, Path(args.out)))
    except (WorkbookError, OSError) as err:
        print(f"room_bench: {explain(err)}", file=sys.stderr)
        return 2
    print(markdown(rows(rooms)))
    print(f"\n{write(rooms, Path(args.out))}; {os.cpu_count()} cores; whole run {time.perf_counter() - started:.0f} s")
    return 1 if any(r.failures for r in rooms) else 0


if __name__ == "__main__":
    sys.exit(main())
