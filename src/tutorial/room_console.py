"""The instructor's console (`notebooks/_instructor.ipynb`): the room's table refreshed by a button, who is stuck
and why, and an end-of-day clean-up that terminates only after a second, confirming click.

The console computes nothing itself: `tutorial.room` surveys the server and plans the clean-up. Clean up shows
what would be terminated (one learner's open workflows, or everyone's); only Confirm clean-up terminates, and
only the runs that plan listed, within `PLAN_TTL_S` of showing it. A name that is no learner's, or a confirm
with no plan shown, is one line and touches nothing.
"""

from __future__ import annotations

import html
import time

import ipywidgets as ipw
from IPython.display import display
from temporalio.client import Client

from . import room, widgets
from .errors import WorkbookError
from .tables import tidy

PLAN_TTL_S = 120.0  # a plan older than this is shown again before anything is terminated: the room moves on
SHOWN_IDS = 3  # ids named in a plan's line; the rest are counted


def _table(rows: list[dict], empty: str) -> str:
    return tidy(rows).to_html() if rows else f"<i>{html.escape(empty)}</i>"


class RoomConsole:
    """Refresh (the table of learners, and the stuck ones with why), Clean up (a plan for a learner or
    `everyone`) and Confirm clean-up (terminates the plan). `waiting_s`: how long a task may wait with nobody
    taking it before its learner counts as stuck."""

    def __init__(self, client: Client, *, waiting_s: float = room.WAITING_S):
        self.client = client
        self.waiting_s = waiting_s
        self.plan: room.Plan | None = None
        self.planned_at = 0.0
        self.last_room: room.Room | None = None
        full_width = ipw.Layout(width="100%")
        self.view = ipw.HTML("<i>press Refresh</i>", layout=full_width)
        self.stuck_view = ipw.HTML("", layout=full_width)
        self.messages = ipw.Output(layout=full_width)  # the newest click's answer, whichever button it was
        self.refresh_button = widgets.ActionButton("Refresh", self._refresh, button_style="info",
                                                   output=self.messages, timeout=60)
        self.cleanup_form = widgets.ActionForm("Clean up", {"learner": ""}, self._plan, parse=self._parse,
                                               timeout=60)
        self.cleanup_form.inputs["learner"].placeholder = f"a learner, or {room.EVERYONE}"
        self.cleanup_form.button.output = self.messages
        self.cleanup_form.button.button.button_style = "warning"
        self.confirm_button = widgets.ActionButton("Confirm clean-up", self._confirm, button_style="danger",
                                                   output=self.messages, timeout=60)
        self.widget = ipw.VBox([
            ipw.HBox([self.refresh_button.button]),
            ipw.HBox([*self.cleanup_form.inputs.values(), self.cleanup_form.button.button,
                      self.confirm_button.button]),
            self.messages,
            self.view,
            self.stuck_view,
        ])

    def _ipython_display_(self) -> None:
        display(self.widget)

    @staticmethod
    def _parse(values: dict[str, str]) -> dict[str, str]:
        return {"target": room.check_target(values["learner"])}  # a ValueError: one red line, nothing sent

    async def _refresh(self) -> str:
        self.last_room = found = await room.survey(self.client, waiting_s=self.waiting_s)
        self.view.value = _table(found.rows(), "nobody here yet: no workflow on this server has a learner's prefix")
        self.stuck_view.value = "<p><b>Stuck</b></p>" + _table(found.stuck_rows(), "nobody is stuck")
        return found.summary()

    async def _plan(self, target: str) -> str:
        self.plan = None  # a new Clean up replaces the plan shown before, even when it fails
        plan = await room.plan_cleanup(self.client, target)
        if not plan.workflows:
            return widgets.Caution(f"{plan.describe()}: nothing to clean up")
        self.plan, self.planned_at = plan, time.monotonic()
        ids = ", ".join(w for w, _ in plan.workflows[:SHOWN_IDS])
        more = f" and {len(plan.workflows) - SHOWN_IDS} more" if len(plan.workflows) > SHOWN_IDS else ""
        return (f"{plan.describe()} would be terminated ({ids}{more}). Nothing is terminated yet: click Confirm "
                "clean-up to do it.")

    async def _confirm(self) -> str:
        plan, self.plan = self.plan, None  # one confirmation per plan
        if plan is None:
            raise WorkbookError("Nothing to confirm: click Clean up first (it shows what would be terminated).")
        if time.monotonic() - self.planned_at > PLAN_TTL_S:
            raise WorkbookError(f"The plan is over {PLAN_TTL_S:.0f} s old: click Clean up again to see what is open "
                                "now. Nothing terminated.")
        ended = await room.cleanup(self.client, plan)
        await self._refresh()
        return f"terminated {len(ended)} of the {plan.describe()} shown (the others had closed by themselves)" \
            if len(ended) < len(plan.workflows) else f"terminated {plan.describe()}"

    async def clean_up(self, target: str) -> tuple[str, str]:
        """Clean up, then Confirm clean-up: the two clicks, for a cell. Returns both answers' text."""
        await self.cleanup_form.submit(learner=target)
        planned = widgets.answer_text(self.messages)
        return planned, await widgets.click_and_read(self.confirm_button)
