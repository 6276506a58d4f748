"""The room as the instructor sees it on the shared server: who is here, how far each got, who is stuck; and the
end-of-day clean-up of one learner's or everyone's open workflows.

Every workflow id the workbook makes is `<learner>-<tag>-...` (`workshop.unique` / `scoped`), the tag saying where
it came from: `nb02` (a notebook), `setup-check`, `bench`. A learner's name never contains a tag (workshop.py
refuses such a name), so the learner is everything before the first tag: `ann-b-nb00-greet-1a2b3c` is ann-b's,
not ann's, although it starts with `ann-`. Listing "by prefix" alone would mix them up; `owner` never does.

Stuck means one of two things the server shows for a running workflow (`describe`): its workflow task keeps
failing (the attempt counter climbs: a handler that raises, code that no longer replays), or a task (workflow or
activity) has waited longer than `waiting_s` with nobody taking it (no worker polls that queue any more).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from temporalio.api.enums.v1 import PendingActivityState, PendingWorkflowTaskState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from .entity_signals import send
from .errors import WorkbookError
from .polling import until
from .worker import WorkerController
from .workflows.greeting import Greet, compose_greeting
from .workflows.signal_account import SignalAccount, payload
from .workshop import LEARNER_ENV, TAG, unique

WAITING_S = 10.0  # a task older than this, with nobody taking it, is stuck (a healthy worker takes one in ms)
FAILED_ATTEMPTS = 2  # a workflow task on its second attempt has failed once; the worker retries it for ever
EVERYONE = "everyone"
DESCRIBE_AT_ONCE = 16  # describes in flight at once: a room's survey must not swamp the server it looks at


def owner(workflow_id: str) -> tuple[str, str] | None:
    """(learner, tag) of a workbook id, e.g. ("ann-b", "nb00"); None for an id the workbook did not make."""
    found = TAG.search(workflow_id)
    if not found or found.start() == 0:
        return None
    return workflow_id[:found.start()], found.group(1)


@contextlib.contextmanager
def as_learner(name: str):
    """Ids made inside carry `name`'s prefix, exactly as that learner's own kernel makes them (the instructor's
    notebook and the tests play two learners with it)."""
    before = os.environ.get(LEARNER_ENV)
    os.environ[LEARNER_ENV] = name
    try:
        yield name
    finally:
        if before is None:
            os.environ.pop(LEARNER_ENV, None)
        else:
            os.environ[LEARNER_ENV] = before


@dataclass
class Stuck:
    learner: str
    workflow_id: str
    notebook: str
    why: str


@dataclass
class Learner:
    """One learner's workflows on the server, counted per notebook (tag)."""

    name: str
    runs: Counter = field(default_factory=Counter)  # tag -> workflows
    open: Counter = field(default_factory=Counter)  # tag -> still running
    completed: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)  # failed, timed out, terminated, cancelled
    stuck: list[Stuck] = field(default_factory=list)
    last_start: datetime | None = None

    @property
    def notebooks(self) -> list[str]:
        return sorted(self.runs)

    def finished(self, tag: str) -> bool:
        """The notebook's workflows exist, none is open and some completed: its Run All reached the clean-up,
        which closes what it opened (terminated or failed alone, say by the instructor's clean-up, is not)."""
        return self.runs[tag] > 0 and self.open[tag] == 0 and self.completed[tag] > 0

    def progress(self) -> str:
        """`nb00 ✔ · nb02 … 3 open`: which notebooks' workflows exist, and whether they have closed."""
        return " · ".join(f"{t} ✔" if self.finished(t) else f"{t} … {self.open[t]} open" if self.open[t]
                          else f"{t} ended" for t in self.notebooks)


@dataclass
class Room:
    learners: dict[str, Learner]
    others: int  # workflows no learner made (not the workbook's): never counted, never cleaned up
    rpcs: int  # calls this survey cost the server: list pages, describes, task-queue looks
    taken_at: datetime

    @property
    def stuck(self) -> list[Stuck]:
        return [s for learner in self.learners.values() for s in learner.stuck]

    def is_stuck(self, name: str) -> bool:
        return bool(name in self.learners and self.learners[name].stuck)

    def rows(self) -> list[dict]:
        """One row per learner, for `tables.tidy`."""
        return [{"learner": l.name, "notebooks": l.progress(), "workflows": sum(l.runs.values()),
                 "open": sum(l.open.values()), "completed": sum(l.completed.values()),
                 "failed or ended": sum(l.failed.values()), "stuck": len(l.stuck),
                 "last start (UTC)": l.last_start.strftime("%H:%M:%S") if l.last_start else ""}
                for l in sorted(self.learners.values(), key=lambda l: l.name)]

    def stuck_rows(self) -> list[dict]:
        return [{"learner": s.learner, "notebook": s.notebook, "workflow": s.workflow_id, "why": s.why}
                for s in self.stuck]

    def summary(self) -> str:
        names = ", ".join(sorted(self.learners)) or "nobody yet"
        stuck = sorted({s.learner for s in self.stuck})
        return (f"{len(self.learners)} learner(s) here ({names}); stuck: {', '.join(stuck) or 'nobody'}; "
                f"{self.rpcs} call{'s' if self.rpcs != 1 else ''} to the server")


def _query(name: str | None) -> str:
    if name is None:
        return ""
    return f'WorkflowId STARTS_WITH "{name}-"'  # then `owner` drops ann-b's from ann's


def _age_s(stamp, now: datetime) -> float:
    return (now - stamp.ToDatetime(tzinfo=timezone.utc)).total_seconds()


class _Survey:
    def __init__(self, client: Client, waiting_s: float):
        self.client = client
        self.waiting_s = waiting_s
        self.rpcs = 0
        self.limit = asyncio.Semaphore(DESCRIBE_AT_ONCE)
        self.queues: dict[str, float | None] = {}

    async def executions(self, name: str | None) -> list[WorkflowExecution]:
        found = []
        listing = self.client.list_workflows(_query(name), page_size=1000)
        async for execution in listing:
            found.append(execution)
        self.rpcs += max(1, -(-len(found) // 1000))
        return found

    async def last_poll_s(self, queue: str, kind: int) -> float | None:
        """Seconds since a worker last polled `queue` (None: nobody has, as far as the server remembers)."""
        key = f"{kind}:{queue}"
        if key not in self.queues:
            self.rpcs += 1
            response = await self.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                namespace=self.client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind))
            now = datetime.now(timezone.utc)
            ages = [_age_s(p.last_access_time, now) for p in response.pollers]
            self.queues[key] = min(ages) if ages else None
        return self.queues[key]

    async def why_stuck(self, execution: WorkflowExecution) -> str | None:
        """Why this running workflow is stuck, or None."""
        async with self.limit:
            self.rpcs += 1
            try:
                raw = (await self.client.get_workflow_handle(execution.id, run_id=execution.run_id).describe()
                       ).raw_description
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return None  # closed and gone between the list and the look
                raise
        now = datetime.now(timezone.utc)
        queue = execution.task_queue
        if raw.HasField("pending_workflow_task"):
            task = raw.pending_workflow_task
            if task.attempt >= FAILED_ATTEMPTS:
                return f"its workflow task failed or timed out {task.attempt - 1} time(s) and is retried (a " \
                       "handler that raises, code that no longer replays): fix and redeploy, or terminate it"
            waited = _age_s(task.scheduled_time, now)
            if task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED and waited > self.waiting_s:
                return self._nobody_took("workflow task", waited, queue, await self.last_poll_s(
                    queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
        for activity in raw.pending_activities:
            if activity.state != PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED:
                continue
            if activity.attempt >= FAILED_ATTEMPTS and activity.HasField("last_failure"):
                return f"activity {activity.activity_type.name} failed {activity.attempt - 1} time(s): " \
                       f"{activity.last_failure.message[:80]}"
            waited = _age_s(activity.scheduled_time, now) if activity.HasField("scheduled_time") else 0.0
            if waited > self.waiting_s:
                return self._nobody_took(f"activity {activity.activity_type.name}", waited, queue,
                                         await self.last_poll_s(queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
        return None

    @staticmethod
    def _nobody_took(what: str, waited: float, queue: str, last_poll: float | None) -> str:
        polled = "no worker has polled it" if last_poll is None else \
            f"no worker has polled it for {last_poll:.0f} s" if last_poll > 90 else \
            f"its last poll was {last_poll:.0f} s ago (a worker that stopped, or one too busy)"
        return f"its {what} has waited {waited:.0f} s on queue {queue}: {polled}"


async def survey(client: Client, *, learner: str | None = None, waiting_s: float = WAITING_S) -> Room:
    """Who is here, how far each got, who is stuck: one list of the server's workflows (or of one learner's),
    and a `describe` of each one still running."""
    if learner is not None:
        learner = check_target(learner)
        learner = None if learner == EVERYONE else learner
    look = _Survey(client, waiting_s)
    learners: dict[str, Learner] = {}
    others = 0
    running: list[tuple[Learner, str, WorkflowExecution]] = []
    for execution in await look.executions(learner):
        found = owner(execution.id)
        if found is None or (learner is not None and found[0] != learner):
            others += found is None
            continue
        name, tag = found
        l = learners.setdefault(name, Learner(name))
        l.runs[tag] += 1
        if execution.status == WorkflowExecutionStatus.RUNNING:
            l.open[tag] += 1
            running.append((l, tag, execution))
        elif execution.status in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.CONTINUED_AS_NEW):
            l.completed[tag] += 1
        else:
            l.failed[tag] += 1
        if execution.start_time and (l.last_start is None or execution.start_time > l.last_start):
            l.last_start = execution.start_time
    whys = await asyncio.gather(*(look.why_stuck(e) for _, _, e in running))
    for (l, tag, execution), why in zip(running, whys):
        if why:
            l.stuck.append(Stuck(l.name, execution.id, tag, why))
    return Room(learners, others, look.rpcs, datetime.now(timezone.utc))


@dataclass
class Plan:
    """What a clean-up would terminate: shown first, done only after a confirmation."""

    target: str  # a learner's name, or EVERYONE
    workflows: list[tuple[str, str]]  # (workflow id, run id) still open when the plan was made

    def describe(self) -> str:
        whose = "every learner's" if self.target == EVERYONE else f"{self.target}'s"
        return f"{len(self.workflows)} open workflow(s) of {whose}"


def check_target(text: str) -> str:
    """A clean-up target typed by the instructor: a learner's name or `everyone`; ValueError otherwise."""
    name = text.strip().lower()
    if name == EVERYONE:
        return name
    if not name or not re.fullmatch(r"[a-z0-9-]{1,32}", name) or TAG.search(name):
        raise ValueError(f"{text.strip()[:40]!r} is not a learner's name (letters, digits, dashes) nor "
                         f"'{EVERYONE}': nothing terminated")
    return name


async def plan_cleanup(client: Client, target: str) -> Plan:
    """The open workflows a clean-up of `target` (a learner or EVERYONE) would terminate. A learner with no
    workflow at all on the server is an error: a typo must never look like a clean room."""
    name = check_target(target)
    look = _Survey(client, WAITING_S)
    mine = []
    seen = set()
    for execution in await look.executions(None if name == EVERYONE else name):
        found = owner(execution.id)
        if found is None or (name != EVERYONE and found[0] != name):
            continue
        seen.add(found[0])
        if execution.status == WorkflowExecutionStatus.RUNNING:
            mine.append((execution.id, execution.run_id))
    if name != EVERYONE and not seen:
        here = await survey(client)
        raise WorkbookError(f"No learner {name!r} on this server (here: {', '.join(sorted(here.learners)) or 'nobody'})"
                            ": nothing terminated.")
    return Plan(name, mine)


async def cleanup(client: Client, plan: Plan, *, reason: str = "end-of-day clean-up by the instructor") -> list[str]:
    """Terminate the plan's workflows that are still open; returns the ids terminated. Only the runs the plan
    listed: a workflow a learner started after the plan was shown is left alone."""
    async def end(workflow_id: str, run_id: str) -> str | None:
        try:
            await client.get_workflow_handle(workflow_id, run_id=run_id).terminate(reason=reason)
            return workflow_id
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:  # it closed by itself meanwhile
                return None
            raise

    ended = [w for w in await asyncio.gather(*(end(w, r) for w, r in plan.workflows)) if w]
    if ended:  # the list (visibility) lags a terminate a little: the next survey must not show them still open
        last = ended[-1].replace('"', '')
        await until(lambda: client.count_workflows(f'WorkflowId = "{last}" AND ExecutionStatus = "Running"'),
                    lambda found: found.count == 0, timeout=10,
                    gave_up="the server's list still shows the last terminated workflow as running")
    return ended


DEMO_LEARNERS = ("demo-ada", "demo-bo")


@dataclass
class Demo:
    """Two learners played in the instructor's kernel, with the lessons' own workflows, so the view has a room
    to show even on an empty server: demo-ada finished notebook 00 and left notebook 02's account open (idle,
    nothing pending); demo-bo started notebook 00's Greet and has no worker (a kernel that died)."""

    client: Client
    ada_greet: WorkflowHandle
    ada_account: WorkflowHandle
    bo_greet: WorkflowHandle
    bo_queue: str

    def bo_worker(self) -> WorkerController:
        """The worker demo-bo lacked, on demo-bo's queue (made as demo-bo: a controller scopes its queue to the
        learner whose kernel makes it)."""
        with as_learner(DEMO_LEARNERS[1]):
            return WorkerController(self.client, task_queue=self.bo_queue, workflows=[Greet],
                                    activities=[compose_greeting])


async def play_demo(client: Client) -> Demo:
    ada, bo = DEMO_LEARNERS
    with as_learner(ada):
        async with WorkerController(client, task_queue=unique("nb00"), workflows=[Greet, SignalAccount],
                                    activities=[compose_greeting]) as worker:
            greet = await client.start_workflow(Greet.run, ada, id=unique("nb00-greet"), task_queue=worker.task_queue)
            await greet.result()
            account = await send(client, unique("nb02-account"), "deposit", payload(10), task_queue=worker.task_queue)
            await account.query(SignalAccount.state)  # its first task done: open, idle, nothing pending
    with as_learner(bo):
        queue = unique("nb00")
        waiting = await client.start_workflow(Greet.run, bo, id=unique("nb00-greet"), task_queue=queue)
    return Demo(client, greet, account, waiting, queue)
