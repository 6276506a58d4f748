"""Notebook 02's client side: open an account with signal-with-start, signal it, query it, measure it.

The account itself (`SignalAccount`, its payloads and what its queries return) lives in
`tutorial.workflows.signal_account`; this module only talks to it and returns what it saw, as data the notebook
prints, charts (`tutorial.charts.signals`) and asserts on. The console is `tutorial.consoles.AccountConsole`.

A signal returns nothing, so a client that wants to know what became of it **queries again until** the change
shows (C11): `state_until` and `wait_for_outcome` ask `tutorial.polling.until`, the workbook's one poller, and
wait out the errors a query meets while no worker can answer it yet (`query_not_yet`).

The checks the notebook asserts with are in `tutorial.entity_checks` (C9, C10), `tutorial.query_consistency`
(C11, and a query's failure modes) and `tutorial.signal_failures` (exceptions in a signal handler).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from datetime import timedelta

import pandas as pd
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from .polling import Seen, until
from .workflows import domain
from .workflows.signal_account import SIGNALS, AccountConfig, AccountState, SignalAccount, payload
from .workshop import sized

# What a client is told when the account does not show a change in time. It starts like `errors.explain`'s
# sentence for any timeout, because that is what it is.
NOT_VISIBLE = "Timed out: the account did not show the change (is a worker running for its task queue?)"


async def send(client: Client, account_id: str, signal: str, arg: Any = None, *, task_queue: str,
               idle_close_after_s: float | None = None, handler_delay_ms: float = 0.0,
               workflow_class: type = SignalAccount) -> WorkflowHandle:
    """Signal-with-start: deliver `signal(arg)` to the account, creating it first if it is not open.

    The workflow id is the account id. The config only matters when this call creates the account.
    `REJECT_DUPLICATE` keeps a closed account closed: sending to it raises `domain.AccountClosed` instead of
    silently opening a fresh, empty account under the same id.
    """
    if signal not in SIGNALS:
        raise ValueError(f"signal must be one of {', '.join(SIGNALS)}, not {signal!r}")
    config = AccountConfig(account_id=account_id, handler_delay_ms=handler_delay_ms)
    if idle_close_after_s is not None:
        config.idle_close_after_s = idle_close_after_s
    try:
        return await client.start_workflow(
            workflow_class.run, config, id=account_id, task_queue=task_queue,
            start_signal=signal, start_signal_args=[] if arg is None else [arg],
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        raise domain.AccountClosed(
            f"account {account_id} is closed (its workflow has completed); open a new one with a new id") from None


async def open_account(client: Client, account_id: str, *, task_queue: str) -> WorkflowHandle:
    """Open an empty account (no first signal): what a console opens in place of a closed one before it sends
    something other than a deposit. `REJECT_DUPLICATE`, as `send`: a closed account's id is never reused."""
    try:
        return await client.start_workflow(SignalAccount.run, AccountConfig(account_id=account_id), id=account_id,
                                           task_queue=task_queue,
                                           id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
    except WorkflowAlreadyStartedError:
        raise domain.AccountClosed(
            f"account {account_id} is closed (its workflow has completed); open a new one with a new id") from None


# One query may wait this long for an answer before we ask again (a held query that nobody answers).
QUERY_TRY_S = 2.0


def query_not_yet(err: BaseException) -> bool:
    """True for the errors a query meets while no worker can answer it *yet* (measured on the dev server):

    - FAILED_PRECONDITION "no poller seen for task queue recently": no worker has polled the queue for about
      20 s, so the server fails the query (one second before its deadline) instead of letting it time out;
    - RESOURCE_EXHAUSTED "consistent query buffer is full": a query is already held for this workflow (the
      server holds `limits.BUFFERED_QUERIES` while a workflow task is pending or running);
    - DEADLINE_EXCEEDED / CANCELLED "Timeout expired": this try waited `QUERY_TRY_S` and nobody answered.
    Anything else (no such workflow, a failing query handler, a wedged workflow task) is a real answer: raise it.
    """
    if not isinstance(err, RPCError):
        return False
    if err.status == RPCStatusCode.FAILED_PRECONDITION:
        return "no poller" in err.message
    if err.status == RPCStatusCode.CANCELLED:
        return "timeout" in err.message.lower()
    return err.status in (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.DEADLINE_EXCEEDED)


def patience_s() -> float:
    """How long a client queries again before it gives up: 10 s, or 30 s in a room (WORKBOOK_ROOM), where many
    learners' kernels share the machine's cores with one server and a query may wait seconds for a busy worker."""
    return sized(alone=10.0, room=30.0)


async def query_until(handle: WorkflowHandle, query: Any, *args: Any, holds: Callable[[Any], bool] = bool,
                      timeout: float | None = None, gave_up: str = NOT_VISIBLE) -> Seen[Any]:
    """Query again until `holds(answer)`, each try cut at `QUERY_TRY_S`, waiting out `query_not_yet` errors.
    Raises `polling.GaveUp` (a `TimeoutError`) after `timeout` seconds (default: `patience_s()`)."""
    timeout = patience_s() if timeout is None else timeout

    def probe():
        return handle.query(query, args=list(args), rpc_timeout=timedelta(seconds=QUERY_TRY_S))
    return await until(probe, holds, timeout=timeout, gave_up=gave_up, retry_if=query_not_yet)


async def state_until(handle: WorkflowHandle, holds: Callable[[AccountState], bool], *,
                      timeout: float | None = None) -> Seen[AccountState]:
    """Query the account's `state` again until `holds(state)`: what a client does after it signals (C11).

    Raises `polling.GaveUp` (a `TimeoutError`) after `timeout` seconds, also when no worker answers the query.
    """
    return await query_until(handle, SignalAccount.state, holds=holds, timeout=timeout)


async def wait_for_outcome(handle: WorkflowHandle, request_id: str, *, timeout: float | None = None) -> str:
    """Query `outcome(request_id)` until the account has seen the request: "applied" or "rejected: ...".
    Raises `polling.GaveUp` (a `TimeoutError`) if it has not within `timeout` seconds."""
    seen = await query_until(handle, SignalAccount.outcome, request_id, timeout=timeout)
    return seen.value


# ---- C11: signal, then query ----------------------------------------------------------------------------------

@dataclass
class Probe:
    """One signal-then-query measurement (C11)."""

    mode: str  # "at once": query sent together with the signal; "after ack": query sent once signal() returned
    first_query_saw_it: bool
    first_query_ms: float  # from sending the signal until the first query answered
    visible_ms: float  # from sending the signal until a query saw the deposit
    queries: int


async def signal_then_query(handle: WorkflowHandle, n: int, *, at_once: bool, timeout: float | None = None,
                            on_step: Callable[[], None] | None = None) -> list[Probe]:
    """Deposit 1 unit `n` times, each time querying right away, then again until the deposit is visible.

    `at_once=True` sends the query together with the signal (as a second client, or a UI that does not wait,
    would); `at_once=False` sends it once `signal()` has returned, i.e. once the server has stored the signal.
    """
    mode = "at once" if at_once else "after ack"
    state = SignalAccount.state
    expected = (await handle.query(state)).transactions
    probes = []
    for _ in range(n):
        expected += 1
        started = time.perf_counter()
        signal = handle.signal(SignalAccount.deposit, payload(1))
        if at_once:
            first, _ = await asyncio.gather(handle.query(state), signal)
        else:
            await signal
            first = await handle.query(state)
        first_ms = (time.perf_counter() - started) * 1000
        if first.transactions >= expected:
            probes.append(Probe(mode, True, first_ms, first_ms, 1))
        else:
            target = expected
            seen = await state_until(handle, lambda s: s.transactions >= target, timeout=timeout)
            probes.append(Probe(mode, False, first_ms, (time.perf_counter() - started) * 1000, 1 + seen.queries))
        if on_step:
            on_step()
    return probes


def probes_frame(probes: list[Probe]) -> pd.DataFrame:
    """Probes as a DataFrame (one row per signal)."""
    return pd.DataFrame([p.__dict__ for p in probes])


def visibility_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per mode: signals sent, how often the first query missed the deposit, when it became visible
    (p50, p90), and the most queries one deposit needed."""
    return frame.groupby("mode").agg(
        signals=("visible_ms", "size"),
        first_query_missed=("first_query_saw_it", lambda s: int((~s).sum())),
        visible_p50_ms=("visible_ms", "median"),
        visible_p90_ms=("visible_ms", lambda s: s.quantile(0.9)),
        max_queries=("queries", "max"),
    ).round(1)


# ---- C13: a busy worker --------------------------------------------------------------------------------------

async def visibility_ms(handle: WorkflowHandle, n: int) -> list[float]:
    """Milliseconds from sending a deposit until a query sees it, `n` times, one after the other (C13)."""
    return [p.visible_ms for p in await signal_then_query(handle, n, at_once=False)]


class Noise:
    """Keeps a worker busy: each of `handles` gets a deposit, waits until it is applied, and goes again,
    until `stop()`. One signal in flight per account, so every workflow task carries one slow handler."""

    def __init__(self, handles: list[WorkflowHandle]):
        self.handles = handles
        self.sent = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def _loop(self, handle: WorkflowHandle) -> None:
        while not self._stop.is_set():
            await handle.signal(SignalAccount.deposit, payload(1))
            await handle.query(SignalAccount.balance)  # returns once the worker has applied the deposit
            self.sent += 1

    async def start(self) -> "Noise":
        self._tasks = [asyncio.ensure_future(self._loop(h)) for h in self.handles]
        await asyncio.sleep(0)
        return self

    async def stop(self) -> int:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return self.sent


# ---- what the account logged, and how long its history is -----------------------------------------------------

class WorkflowLogs(logging.Handler):
    """Collects what workflows log through `workflow.logger` while installed (`with WorkflowLogs() as logs:`),
    so a cell or a test can show and assert the reason a handler logged."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def __enter__(self) -> "WorkflowLogs":
        logging.getLogger("temporalio.workflow").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("temporalio.workflow").removeHandler(self)


async def history_length(handle: WorkflowHandle) -> int:
    """Events in the workflow's history, as the server reports it."""
    return (await handle.describe()).history_length

