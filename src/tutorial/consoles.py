"""Consoles: one workflow at your fingertips, as buttons, a form and a view (notebook 02's account).

A console sends through the lesson's client helpers (`tutorial.entity_signals`) and redraws its view from a
query; it computes nothing itself.
"""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from typing import Any

import ipywidgets as ipw
from IPython.display import HTML, display
from temporalio.client import Client

from . import widgets
from .entity_signals import send, wait_for_outcome
from .errors import explain
from .history import history_frame
from .workflows import domain
from .workflows.signal_account import AccountState, SignalAccount, payload


class AccountConsole:
    """Buttons that send signals (with signal-with-start), a view refreshed from queries, and the history table.

    Every action ends by refreshing the view from a `state` query, with a short timeout: while the worker is
    stopped the server keeps the signals, but nobody can answer the query, and the view says so.
    """

    def __init__(self, client: Client, account_id: str, *, task_queue: str, query_timeout: float = 3.0):
        self.client = client
        self.account_id = account_id
        self.task_queue = task_queue
        self.query_timeout = query_timeout
        self.handle = client.get_workflow_handle(account_id)
        self.last_state: AccountState | None = None
        self.view = ipw.HTML("<i>no query yet</i>")
        self.form = widgets.ActionForm("Send", {"operation": "deposit", "amount": "10"}, self._send, parse=self._parse)
        self.close_button = widgets.ActionButton("Close account", self._close, button_style="danger")
        self.bad_button = widgets.ActionButton("Send a bad payload", self._bad, button_style="warning",
                                               tooltip='deposit {"amount": "ten"}: the account must reject it')
        self.refresh_button = widgets.ActionButton("Refresh view", self._refresh_action, button_style="info")
        self.history_button = widgets.ActionButton("Show history", self._history, button_style="")
        self.widget = ipw.VBox([
            self.form.widget,
            ipw.HBox([self.close_button.widget, self.bad_button.widget, self.refresh_button.widget]),
            self.view,
            self.history_button.widget,
        ])

    def _ipython_display_(self) -> None:
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
        await self.handle.signal(SignalAccount.close, "closed from the console")
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
        self.view.value = (f'<div style="color:#b00020;font-family:monospace">No answer to the query within '
                           f"{self.query_timeout:g} s: is the worker running? (Signals sent meanwhile are kept "
                           "by the server.)</div>")

    async def _history(self) -> HTML:
        frame = await history_frame(self.handle)
        return HTML(frame[["id", "type", "summary"]].tail(15).to_html(index=False))
