"""Consoles: one workflow at your fingertips, as buttons, a form and a view (notebook 02's account).

A console sends through the lesson's client helpers (`tutorial.entity_signals`) and redraws its view from a
query; it computes nothing itself.

After Run All the clean-up cell has closed the console's account and stopped the worker. A click then still
gives a result: the console's `needs` (`readiness.running_worker`) start the worker again, and an account that
has closed is replaced by a fresh one with a new id (`readiness.Reopening`). Signal-with-start does not revive
a closed account under its old id (`es.send` uses `REJECT_DUPLICATE`, so the server refuses to start a second
run with that id), so a new id is what really happens, and the answer and the view say which account it is.
"""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from collections.abc import Sequence
from typing import Any

import ipywidgets as ipw
from IPython.display import display
from temporalio.client import Client, WorkflowHandle

from . import widgets
from .entity_signals import open_account, send, wait_for_outcome
from .errors import explain
from .history import history_frame
from .readiness import Reopening, is_closed
from .widgets import Caution, note
from .workflows import domain
from .workflows.signal_account import AccountState, SignalAccount, payload
from .workshop import unique

HISTORY_ROWS = 15  # Show history: the newest events


class AccountConsole:
    """Buttons that send signals (with signal-with-start), a view refreshed from queries, and the history table.

    Every action ends by refreshing the view from a `state` query, with a short timeout: while the worker is
    stopped the server keeps the signals, but nobody can answer the query, and the view says so. Every answer
    lands in one full-width message row under the buttons, so a long answer never moves a button.
    `prefix` names the fresh accounts opened in place of a closed one.
    """

    def __init__(self, client: Client, account_id: str, *, task_queue: str, query_timeout: float = 3.0,
                 needs: Sequence[widgets.Need] = (), prefix: str = "nb02-console"):
        self.client = client
        self.task_queue = task_queue
        self.query_timeout = query_timeout
        self.account = Reopening(client.get_workflow_handle(account_id), self._open_empty, prefix=prefix)
        self.last_state: AccountState | None = None
        full_width = ipw.Layout(width="100%")
        self.view = ipw.HTML("<i>no query yet</i>", layout=full_width)
        self.history_view = ipw.HTML("", layout=full_width)
        self.messages = ipw.Output(layout=full_width)  # the newest click's answer, whichever button it was
        needs = list(needs)
        self.form = widgets.ActionForm("Send", {"operation": "deposit", "amount": "10"}, self._send,
                                       parse=self._parse, needs=needs)
        self.form.button.output = self.messages  # the form's answer goes to the same row as the buttons'
        self.close_button = widgets.ActionButton("Close account", self._close, button_style="danger",
                                                 output=self.messages, needs=needs)
        self.bad_button = widgets.ActionButton("Send a bad payload", self._bad, button_style="warning",
                                               tooltip='deposit {"amount": "ten"}: the account must reject it',
                                               output=self.messages, needs=needs)
        self.refresh_button = widgets.ActionButton("Refresh view", self._refresh_action, button_style="info",
                                                   output=self.messages, needs=needs)
        self.history_button = widgets.ActionButton("Show history", self._history, button_style="",
                                                   output=self.messages)
        buttons = (self.close_button, self.bad_button, self.refresh_button, self.history_button)
        self.widget = ipw.VBox([
            ipw.HBox([*self.form.inputs.values(), self.form.button.button]),
            ipw.HBox([b.button for b in buttons]),
            self.messages,
            self.view,
            self.history_view,
        ])

    def _ipython_display_(self) -> None:
        display(self.widget)

    @property
    def handle(self) -> WorkflowHandle:
        """The account the console drives now (a fresh one once the first has closed)."""
        return self.account.handle

    @property
    def account_id(self) -> str:
        return self.account.id

    async def _open_empty(self, account_id: str) -> WorkflowHandle:
        return await open_account(self.client, account_id, task_queue=self.task_queue)

    @staticmethod
    def _parse(values: dict[str, str]) -> dict[str, Any]:
        return {"operation": domain.parse_operation(values["operation"]), "amount": domain.parse_amount(values["amount"])}

    async def _send(self, operation: str, amount: int) -> str:
        request_id = f"ui-{uuid.uuid4().hex[:8]}"
        try:
            await send(self.client, self.account_id, operation, payload(amount, request_id),
                       task_queue=self.task_queue)
        except domain.AccountClosed:
            # Signal-with-start refuses a closed account's id: open a fresh one, with this very request.
            closed = self.account_id
            fresh = unique(self.account.prefix)
            self.account.handle = await send(self.client, fresh, operation, payload(amount, request_id),
                                             task_queue=self.task_queue)
            self.account.reopened.append(fresh)
            note(f"account {closed} has closed (the clean-up cell, or Close account): signal-with-start opened "
                 f"{fresh} with this {operation}")
        try:
            outcome = await wait_for_outcome(self.handle, request_id, timeout=self.query_timeout)
        except TimeoutError:
            self._no_answer()
            return Caution(f"{operation} {amount} ({request_id}): sent, not applied yet; the server keeps the "
                           "signal until a worker runs the account")
        await self.refresh()
        return f"{operation} {amount} to {self.account_id} ({request_id}): {outcome}"

    async def _close(self) -> str:
        try:
            await self.handle.signal(SignalAccount.close, "closed from the console")
        except Exception as err:  # noqa: BLE001 - a closed account is an answer, anything else goes to the widget
            if not is_closed(err):
                raise
            return Caution(f"account {self.account_id} is already closed: Send opens a new one")
        state = await self.refresh()
        if state is None:
            return Caution(f"close signal sent to {self.account_id}; no worker answered the query yet (the "
                           "server keeps the signal until one runs)")
        return f"close signal sent: account {self.account_id} is {'open' if state.open else 'closed'}"

    async def _bad(self) -> str:
        before = await self.refresh()
        await self.account.act(lambda h: h.signal("deposit", {"amount": "ten"}))
        after = await self.refresh()
        if after is None:
            return Caution("bad payload sent; no worker answered the query (the server keeps the signal until "
                           "one runs)")
        if before is None or before.account_id != after.account_id:  # no count before, or a fresh account
            return f"bad payload sent to {after.account_id}: {after.rejected} rejected ({after.last_rejection})"
        return f"bad payload sent: {after.rejected - before.rejected} more rejected ({after.last_rejection})"

    async def _refresh_action(self) -> str:
        state = await self.refresh()
        if state is None:
            return Caution(f"no answer to the query within {self.query_timeout:g} s (is the worker running?)")
        if not state.open:
            return (f"view refreshed: account {state.account_id} has closed ({state.closed_reason}); the view shows "
                    "its final state, and Send opens a new account")
        return f"view refreshed: account {state.account_id}, balance {state.balance}"

    async def refresh(self) -> AccountState | None:
        """Query the account and redraw the view; None (and a note in the view) if nobody answered in time."""
        started = time.perf_counter()
        try:
            state = await asyncio.wait_for(self.handle.query(SignalAccount.state), self.query_timeout)
        except asyncio.TimeoutError:
            self._no_answer()
            return None
        except Exception as err:  # noqa: BLE001 - the view shows any failure as one sentence
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
        self.view.value = (f'<div style="color:#8a5a00;font-family:monospace">⚠ No answer to the query within '
                           f"{self.query_timeout:g} s: is the worker running? (Signals sent meanwhile are kept "
                           "by the server.)</div>")

    async def _history(self) -> str:
        frame = await history_frame(self.handle)
        self.history_view.value = widgets.tidy(frame.tail(HISTORY_ROWS), ["id", "type", "summary"]).to_html()
        return (f"history of {self.account_id}: {len(frame)} events, the newest {min(len(frame), HISTORY_ROWS)} "
                f"below the view (last: {frame['type'].iloc[-1]})")
