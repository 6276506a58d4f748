"""Notebook 02: the bank account as a long-running *entity workflow*, changed by signals and read by queries.

One workflow execution **is** one account, for as long as the account is open. Its id is the account id, its
state lives in the workflow object (kept by the worker's cache, rebuilt from the history after an eviction), and
the server's event history is the only storage: there is no database beside it. The rules are the shared ones in
`tutorial.domain`, so notebooks 01-05 agree on what an account may do.

How clients talk to it
- **Signals** `deposit`, `withdraw`, `close` change it. A signal is fire-and-forget: the server persists it and
  returns nothing to the caller, not even whether the account accepted it.
- **Queries** `balance`, `state`, `outcome`, `recent_rejections` read it. A query returns a value but adds nothing to
  the history, so it must not change anything (see `AccountWithBadQueries` for what happens when it tries).
- **Signal-with-start** (`send`) creates the account on first use: one call that starts the workflow if no
  account with that id is open, and delivers the signal either way.

What it teaches beyond signals and queries
- A **timer**: the account closes itself after `idle_close_after_s` without an accepted transaction.
- **Cancellation**: a client's `handle.cancel()` closes the account cleanly and ends the workflow.
- **Bad input**: a signal can not raise back to its sender, and an exception in a handler would fail the
  workflow task (retried forever: a wedged workflow). So every handler validates its raw payload itself,
  logs why it rejects one (`workflow.logger`), keeps the state valid, and counts the rejection where a query
  can see it.

Notebooks 03 (updates) and 05 (continue-as-new) build on this class; keep it small and keep its rules in
`tutorial.domain`.
"""

from __future__ import annotations

import asyncio
import html
import logging
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import RawValue, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from .workflows import domain

SIGNALS = ("deposit", "withdraw", "close")
PAYLOAD_FIELDS = ("amount", "request_id")
KEEP_REJECTIONS = 100


# --------------------------------------------------------------------------------------------------------------
# What travels: the workflow's input, and what its queries return
# --------------------------------------------------------------------------------------------------------------

@dataclass
class AccountConfig:
    """The workflow's input: which account, and how it behaves."""

    account_id: str
    idle_close_after_s: float = 24 * 3600.0  # the timer: close after this long without an accepted transaction
    handler_delay_ms: float = 0.0  # demo knob (C13): every signal handler blocks this long, like a slow library call


@dataclass
class Rejection:
    """A signal the account refused, and why (a signal cannot tell its sender, so a query must)."""

    signal: str
    reason: str
    request_id: str = ""

    def __str__(self) -> str:
        return f"{self.signal}: {self.reason}"


@dataclass
class AccountState:
    """What the `state` query returns: everything a client may want to show about the account."""

    account_id: str
    balance: int
    open: bool
    transactions: int  # accepted deposits and withdrawals
    signals_received: int  # every signal that reached a handler, accepted or not
    rejected: int  # signals refused: bad payload, business rule, duplicate request id, closed account
    last_rejection: str
    closed_reason: str
    idle_close_after_s: float


# --------------------------------------------------------------------------------------------------------------
# Validation of a raw signal payload (pure, so it runs the same inside and outside the sandbox)
# --------------------------------------------------------------------------------------------------------------

def parse_payload(operation: str, raw: Any) -> domain.Transaction:
    """A signal's raw JSON payload as a `domain.Transaction`, or `domain.AccountError` saying what is wrong.

    The handlers take `Any` on purpose: with a typed parameter the SDK itself drops a payload it cannot
    decode (one log line, nothing counted, the sender never knows). Taking the raw value lets the account
    reject it with a reason a query can report.
    """
    if not isinstance(raw, dict):
        raise domain.AccountError(f"payload must be an object like {{'amount': 10, 'request_id': 'r1'}}, not {raw!r:.60}")
    unknown = sorted(set(raw) - set(PAYLOAD_FIELDS))
    if unknown:
        raise domain.AccountError(f"unknown field {unknown[0]!r} (fields: amount, request_id)")
    if "amount" not in raw:
        raise domain.AccountError("missing field 'amount'")
    amount = domain.check_amount(raw["amount"])
    request_id = raw.get("request_id", "")
    if not isinstance(request_id, str) or len(request_id) > 100:
        raise domain.AccountError("request_id must be a string of at most 100 characters")
    return domain.Transaction(operation=operation, amount=amount, request_id=request_id)


def payload(amount: int, request_id: str = "") -> dict[str, Any]:
    """The payload `deposit` and `withdraw` expect."""
    return {"amount": amount, "request_id": request_id}


# --------------------------------------------------------------------------------------------------------------
# The entity
# --------------------------------------------------------------------------------------------------------------

@workflow.defn
class AccountEntity:
    """A bank account that lives as long as it is open. Signals change it; queries read it."""

    @workflow.init
    def __init__(self, config: AccountConfig) -> None:
        # @workflow.init: the state exists before any handler runs, also for the signal of a signal-with-start.
        self.config = config
        self.account = domain.Account(account_id=config.account_id)
        self.signals_received = 0
        self.changes = 0  # accepted transactions; the idle timer restarts whenever this moves
        self.rejections: list[Rejection] = []
        self.rejected = 0
        self.closed_reason = ""

    @workflow.run
    async def run(self, config: AccountConfig) -> AccountState:
        """Wait for signals until the account closes: by the `close` signal, the idle timer, or cancellation."""
        idle = timedelta(seconds=config.idle_close_after_s)
        try:
            while self.account.open:
                seen = self.changes
                try:
                    # One durable timer per wait: a transaction wakes us up (and cancels it); silence fires it.
                    await workflow.wait_condition(lambda: self.changes != seen or not self.account.open,
                                                  timeout=idle, timeout_summary="idle close")
                except asyncio.TimeoutError:
                    self._close(f"idle for {config.idle_close_after_s:g} s")
        except asyncio.CancelledError:
            # The client called handle.cancel(). We close the account and finish normally, so the result is
            # the final statement (re-raising instead would end the workflow as Canceled, with no result).
            self._close("cancelled by a client")
        return self.state()

    # ---- signals: change the account, return nothing ---------------------------------------------------------

    # A handler that raised would fail the workflow task, and the worker would retry that task forever (a wedged
    # workflow). So handlers take whatever was sent (`Any`, and `*extra` for surplus arguments) and reject it
    # themselves.

    @workflow.signal
    def deposit(self, request: Any = None, *extra: Any) -> None:
        """Add money. Payload: {"amount": int, "request_id": str}."""
        self._transact("deposit", request, extra)

    @workflow.signal
    def withdraw(self, request: Any = None, *extra: Any) -> None:
        """Take money out, if the balance allows. Payload: {"amount": int, "request_id": str}."""
        self._transact("withdraw", request, extra)

    @workflow.signal
    def close(self, reason: Any = None, *extra: Any) -> None:
        """Close the account; the workflow then completes with the final state."""
        self.signals_received += 1
        if not self.account.open:
            self._reject("close", "account is already closed")
            return
        self._close(reason[:200] if isinstance(reason, str) and reason else "closed by the owner")

    @workflow.signal(dynamic=True)
    def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """Any other signal name (a typo, an old client): rejected and counted instead of buffered unseen."""
        self.signals_received += 1
        self._reject(name, f"unknown signal {name!r} (signals: {', '.join(SIGNALS)})")

    # ---- queries: read the account, change nothing -----------------------------------------------------------

    @workflow.query
    def balance(self) -> int:
        return self.account.balance

    @workflow.query
    def state(self) -> AccountState:
        return AccountState(
            account_id=self.account.account_id, balance=self.account.balance, open=self.account.open,
            transactions=self.account.transactions, signals_received=self.signals_received,
            rejected=self.rejected, last_rejection=str(self.rejections[-1]) if self.rejections else "",
            closed_reason=self.closed_reason, idle_close_after_s=self.config.idle_close_after_s,
        )

    @workflow.query
    def outcome(self, request_id: str) -> str:
        """What became of one request: "applied", "rejected: <reason>", or "" when the account has not seen it."""
        if request_id in self.account.applied:
            return "applied"
        for rejection in reversed(self.rejections):
            if rejection.request_id == request_id:
                return f"rejected: {rejection.reason}"
        return ""

    @workflow.query
    def recent_rejections(self) -> list[Rejection]:
        return list(self.rejections)

    # ---- the one place state changes -------------------------------------------------------------------------

    def _transact(self, operation: str, raw: Any, extra: tuple = ()) -> None:
        self.signals_received += 1
        if self.config.handler_delay_ms:
            _block(self.config.handler_delay_ms)
        request_id = raw.get("request_id", "") if isinstance(raw, dict) else ""
        request_id = request_id if isinstance(request_id, str) else ""
        try:
            if extra:
                raise domain.AccountError(f"expected one payload, got {1 + len(extra)} arguments")
            txn = parse_payload(operation, raw)
            if txn.request_id and txn.request_id in self.account.applied:
                raise domain.AccountError(f"request {txn.request_id!r} was already applied")
            self.account = domain.apply(self.account, txn)
        except domain.AccountError as err:  # never let a bad signal fail the workflow task
            self._reject(operation, str(err), request_id)
            return
        self.changes += 1

    def _reject(self, signal: str, reason: str, request_id: str = "") -> None:
        self.rejected += 1
        self.rejections = (self.rejections + [Rejection(signal, reason, request_id)])[-KEEP_REJECTIONS:]
        workflow.logger.warning("account %s rejected %s: %s", self.account.account_id, signal, reason)

    def _close(self, reason: str) -> None:
        if self.account.open:
            self.account = domain.close(self.account)
            self.closed_reason = reason


def _block(ms: float) -> None:
    """Block the handler for `ms`, as a synchronous call to a slow library would (a demo of a slow handler,
    not a pattern: real workflow code must not block). It changes no state, so replay stays deterministic.
    Keep it well under 2 s per workflow task, or the SDK reports a potential deadlock."""
    with workflow.unsafe.sandbox_unrestricted():
        time.sleep(ms / 1000)


# --------------------------------------------------------------------------------------------------------------
# C9: what a query must not do. Same account, two extra queries that break the rule.
# --------------------------------------------------------------------------------------------------------------

@activity.defn
async def record_audit(account_id: str) -> str:
    """An activity a query would like to run (it may not)."""
    return f"audited {account_id}"


@workflow.defn
class AccountWithBadQueries(AccountEntity):
    """`AccountEntity` plus two queries that break the rule. Do not copy them."""

    @workflow.run
    async def run(self, config: AccountConfig) -> AccountState:
        return await super().run(config)

    @workflow.query
    def audited_balance(self) -> int:
        """Tries to issue a command (start an activity) from a query: the SDK refuses at run time."""
        workflow.start_activity(record_audit, self.account.account_id, start_to_close_timeout=timedelta(seconds=5))
        return self.account.balance

    @workflow.query
    def balance_with_bonus(self) -> int:
        """Changes state from a query. Python lets it happen, in this worker's memory only: the history never
        hears of it, so the next replay (after an eviction or a worker restart) rebuilds the state without it."""
        self.account = replace(self.account, balance=self.account.balance + 100)
        return self.account.balance


WORKFLOWS = [AccountEntity, AccountWithBadQueries]
ACTIVITIES = [record_audit]


# --------------------------------------------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------------------------------------------

async def send(client: Client, account_id: str, signal: str, arg: Any = None, *, task_queue: str,
               idle_close_after_s: float | None = None, handler_delay_ms: float = 0.0,
               workflow_class: type = AccountEntity) -> WorkflowHandle:
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


@dataclass
class Seen:
    """What `query_until` found: the value that satisfied the test, and what it took to get it."""

    value: Any
    queries: int  # queries sent; 1 means the first query already saw the change
    seconds: float


async def query_until(query: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], *, timeout: float = 10.0,
                      interval: float = 0.01, max_interval: float = 0.2) -> Seen:
    """Query again until `done(value)` holds: what a client of a signal-based entity does after it signals (C11).

    Waits `interval` between queries, doubling up to `max_interval`. Raises `TimeoutError` after `timeout`
    seconds, also when a query itself gets no answer (a query blocks while no worker runs the workflow).
    """
    started = time.perf_counter()
    deadline = started + timeout
    queries, pause = 0, interval
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        queries += 1
        try:
            value = await asyncio.wait_for(query(), remaining)
        except asyncio.TimeoutError:
            break
        if done(value):
            return Seen(value=value, queries=queries, seconds=time.perf_counter() - started)
        await asyncio.sleep(max(0.0, min(pause, deadline - time.perf_counter())))
        pause = min(pause * 2, max_interval)
    raise TimeoutError(f"the change was not visible after {timeout:g} s ({queries} queries); is a worker running?")


async def wait_for_outcome(handle: WorkflowHandle, request_id: str, *, timeout: float = 10.0) -> str:
    """Query `outcome(request_id)` until the account has seen the request: "applied" or "rejected: ..."."""
    seen = await query_until(lambda: handle.query(AccountEntity.outcome, request_id), bool, timeout=timeout)
    return seen.value


@dataclass
class Probe:
    """One signal-then-query measurement (C11)."""

    mode: str  # "at once": query sent together with the signal; "after ack": query sent once signal() returned
    first_query_saw_it: bool
    first_query_ms: float  # from sending the signal until the first query answered
    visible_ms: float  # from sending the signal until a query saw the deposit
    queries: int


async def signal_then_query(handle: WorkflowHandle, n: int, *, at_once: bool, timeout: float = 10.0,
                            on_step: Callable[[], None] | None = None) -> list[Probe]:
    """Deposit 1 unit `n` times, each time querying right away, then again until the deposit is visible.

    `at_once=True` sends the query together with the signal (as a second client, or a UI that does not wait,
    would); `at_once=False` sends it once `signal()` has returned, i.e. once the server has stored the signal.
    """
    mode = "at once" if at_once else "after ack"
    state = AccountEntity.state
    expected = (await handle.query(state)).transactions
    probes = []
    for _ in range(n):
        expected += 1
        started = time.perf_counter()
        signal = handle.signal(AccountEntity.deposit, payload(1))
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
            seen = await query_until(lambda: handle.query(state), lambda s: s.transactions >= target, timeout=timeout)
            probes.append(Probe(mode, False, first_ms, (time.perf_counter() - started) * 1000, 1 + seen.queries))
        if on_step:
            on_step()
    return probes


def probes_frame(probes: list[Probe]):
    """Probes as a DataFrame (one row per signal)."""
    import pandas as pd

    return pd.DataFrame([p.__dict__ for p in probes])


def plot_visibility(frame, title: str = "Signal, then query: when does the deposit show?"):
    """Left: how often the first query missed the signal, per mode. Right: time until the deposit was visible."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [1, 2.2]})
    modes = list(dict.fromkeys(frame["mode"]))
    colours = {"at once": "#ff7f0e", "after ack": "#1f77b4"}
    missed = [100 * (1 - frame.loc[frame["mode"] == m, "first_query_saw_it"].mean()) for m in modes]
    left.bar(modes, missed, color=[colours.get(m, "#7f7f7f") for m in modes])
    for x, value in enumerate(missed):
        left.annotate(f"{value:.0f}%", (x, value), ha="center", va="bottom")
    left.set_ylabel("first query did not see it (%)")
    left.set_ylim(0, 105)
    upper = max(1.0, frame["visible_ms"].quantile(0.98))
    bins = [upper * i / 40 for i in range(41)]
    for m in modes:
        values = frame.loc[frame["mode"] == m, "visible_ms"].clip(upper=upper)
        right.hist(values, bins=bins, alpha=0.6, label=m, color=colours.get(m, "#7f7f7f"))
    right.set_xlabel("ms from sending the signal until a query saw the deposit (clipped at p98)")
    right.set_ylabel("signals")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


async def visibility_ms(handle: WorkflowHandle, n: int) -> list[float]:
    """Milliseconds from sending a deposit until a query sees it, `n` times, one after the other (C13)."""
    return [p.visible_ms for p in await signal_then_query(handle, n, at_once=False)]


def plot_busy(idle_ms: list[float], busy_ms: list[float], noise_signals: int):
    """One dot per deposit: how long it took to become visible with an idle and with a busy worker (C13)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.4))
    for y, (values, colour) in enumerate([(idle_ms, "#1f77b4"), (busy_ms, "#d62728")]):
        ax.scatter(values, [y] * len(values), color=colour, alpha=0.6, s=40)
        median = statistics.median(values)
        ax.plot([median, median], [y - 0.25, y + 0.25], color="black")
        ax.annotate(f"median {median:.0f} ms", (median, y + 0.28), ha="center", fontsize=8)
    ax.set_yticks([0, 1], ["idle worker", f"busy worker\n({noise_signals} noisy signals)"])
    ax.set_ylim(-0.6, 1.8)
    ax.set_xlim(left=0)
    ax.set_xlabel("ms from sending a deposit until a query saw it")
    fig.tight_layout()
    return fig


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
            await handle.signal(AccountEntity.deposit, payload(1))
            await handle.query(AccountEntity.balance)  # returns once the worker has applied the deposit
            self.sent += 1

    async def start(self) -> "Noise":
        self._tasks = [asyncio.ensure_future(self._loop(h)) for h in self.handles]
        await asyncio.sleep(0)
        return self

    async def stop(self) -> int:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        return self.sent


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


async def attempted(deposit_and_confirm: Callable[..., Awaitable[Any]]) -> bool:
    """False while the exercise's `deposit_and_confirm` is still the stub (it raises NotImplementedError)."""
    try:
        await deposit_and_confirm(None, 1, "probe", timeout=0.1)
    except NotImplementedError:
        return False
    except Exception:
        return True  # an attempt, even a broken one: the check will say what is wrong
    return True


# --------------------------------------------------------------------------------------------------------------
# Widgets: one account at your fingertips
# --------------------------------------------------------------------------------------------------------------

class AccountConsole:
    """Buttons that send signals (with signal-with-start), a view refreshed from queries, and the history table.

    Every action ends by refreshing the view from a `state` query, with a short timeout: while the worker is
    stopped the server keeps the signals, but nobody can answer the query, and the view says so.
    """

    def __init__(self, client: Client, account_id: str, *, task_queue: str, query_timeout: float = 3.0):
        import ipywidgets as ipw

        from . import widgets as kit

        self.client = client
        self.account_id = account_id
        self.task_queue = task_queue
        self.query_timeout = query_timeout
        self.handle = client.get_workflow_handle(account_id)
        self.last_state: AccountState | None = None
        self.view = ipw.HTML("<i>no query yet</i>")
        self.form = kit.ActionForm("Send", {"operation": "deposit", "amount": "10"}, self._send, parse=self._parse)
        self.close_button = kit.ActionButton("Close account", self._close, button_style="danger")
        self.bad_button = kit.ActionButton("Send a bad payload", self._bad, button_style="warning",
                                           tooltip='deposit {"amount": "ten"}: the account must reject it')
        self.refresh_button = kit.ActionButton("Refresh view", self._refresh_action, button_style="info")
        self.history_button = kit.ActionButton("Show history", self._history, button_style="")
        self.widget = ipw.VBox([
            self.form.widget,
            ipw.HBox([self.close_button.widget, self.bad_button.widget, self.refresh_button.widget]),
            self.view,
            self.history_button.widget,
        ])

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    @staticmethod
    def _parse(values: dict[str, str]) -> dict[str, Any]:
        return {"operation": domain.parse_operation(values["operation"]), "amount": domain.parse_amount(values["amount"])}

    async def _send(self, operation: str, amount: int) -> str:
        request_id = f"ui-{uuid.uuid4().hex[:8]}"
        await send(self.client, self.account_id, operation, payload(amount, request_id), task_queue=self.task_queue)
        try:
            outcome = await wait_for_outcome(self.handle, request_id, timeout=self.query_timeout)
        except TimeoutError:
            self._no_answer()
            return (f"{operation} {amount} ({request_id}): sent, not applied yet; the server keeps the signal "
                    "until a worker runs the account")
        await self.refresh()
        return f"{operation} {amount} ({request_id}): {outcome}"

    async def _close(self) -> str:
        await self.handle.signal(AccountEntity.close, "closed from the console")
        await self.refresh()
        return "close signal sent"

    async def _bad(self) -> str:
        before = await self.refresh()
        await self.handle.signal("deposit", {"amount": "ten"})
        after = await self.refresh() if before else None
        if before is None or after is None:
            return "bad payload sent; no worker answered the query (the server keeps the signal until one runs)"
        return f"bad payload sent: {after.rejected - before.rejected} more rejected ({after.last_rejection})"

    async def _refresh_action(self) -> str:
        state = await self.refresh()
        return "view refreshed" if state else "no answer to the query (is the worker running?)"

    async def refresh(self) -> AccountState | None:
        """Query the account and redraw the view; None (and a note in the view) if nobody answered in time."""
        started = time.perf_counter()
        try:
            state = await asyncio.wait_for(self.handle.query(AccountEntity.state), self.query_timeout)
        except asyncio.TimeoutError:
            self._no_answer()
            return None
        except Exception as err:
            from .errors import explain

            self.view.value = f'<div style="color:#b00020;font-family:monospace">{html.escape(explain(err))}</div>'
            return None
        self.last_state = state
        ms = (time.perf_counter() - started) * 1000
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td><b>{html.escape(str(v))}</b></td></tr>"
                       for k, v in state.__dict__.items())
        self.view.value = (f"<table style='font-family:monospace'>{rows}</table>"
                           f"<small>from a <code>state</code> query at {time.strftime('%H:%M:%S')} ({ms:.0f} ms)</small>")
        return state

    def _no_answer(self) -> None:
        self.view.value = (f'<div style="color:#b00020;font-family:monospace">No answer to the query within '
                           f"{self.query_timeout:g} s: is the worker running? (Signals sent meanwhile are kept "
                           "by the server.)</div>")

    async def _history(self):
        from IPython.display import HTML

        from .history import history_frame

        frame = await history_frame(self.handle)
        return HTML(frame[["id", "type", "summary"]].tail(15).to_html(index=False))
