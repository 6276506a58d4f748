"""A small widget kit used by every notebook: buttons and forms that run async Temporal actions.

Widget callbacks are plain functions, but Temporal calls are coroutines, so a click schedules the action as
a task on the kernel's event loop and returns at once: the notebook stays responsive, and the result (or a
short error, never a traceback) lands in the widget's own Output area, which JupyterLab shows even when no
cell is running. A cell can `await button.result()` to get what the last click did, or run the action once
if nobody clicked: that is how nbval and the asserts see the same thing a learner sees.
"""

from __future__ import annotations

import asyncio
import contextvars
import html
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import ipywidgets as widgets
from IPython.display import HTML, Code, display

from .errors import explain
from .tables import table, tidy  # noqa: F401 - notebooks call widgets.table

Action = Callable[..., Awaitable[Any]]
Need = Callable[[], Awaitable[Any]]  # checked before an action; restores what it needs and says so with note()

_notes: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("widget_notes", default=None)


def note(text: str) -> None:
    """Add a remark to the answer of the click that is running ("started the worker again: ...").

    Anything an action awaits may call it; outside a click (a cell calling the same helper) it prints instead.
    """
    notes = _notes.get()
    if notes is None:
        print(text)
    else:
        notes.append(text)


class Caution(str):
    """A result that is not a success ("no answer to the query yet"): shown with ⚠ in amber, never a green tick."""


def _format(value: Any) -> str:
    if value is None:
        return "done"
    if hasattr(value, "_repr_html_"):
        return value._repr_html_()
    return html.escape(str(value))


def plain(markup: str) -> str:
    """The text of a line of markup, for the plain-text copy (tests, logs, the after-Run-All check)."""
    text = re.sub(r"<style.*?</style>", "", markup.replace("<br>", "\n"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


LOOKS = {"ok": ("#1b5e20", "✔"), "caution": ("#8a5a00", "⚠"), "error": ("#b00020", "✖"), "ready": ("#555555", "·")}


def message(out: widgets.Output, text: str, *, error: bool = False, kind: str | None = None,
            replace: bool = False) -> None:
    """Show one line in an Output area: ok ✔, caution ⚠, error ✖ or a neutral ready line. Works from callbacks
    and tasks alike. `replace=True`: the line replaces what the area showed, in the same single widget message.

    Sets the synced `outputs` trait directly: no display formatters to run, nothing routed through a cell.
    """
    colour, icon = LOOKS[kind or ("error" if error else "ok")]
    markup = f'<div style="color:{colour};font-family:monospace;white-space:pre-wrap">{icon} {text}</div>'
    out.outputs = (*(() if replace else out.outputs),
                   {"output_type": "display_data", "metadata": {},
                    "data": {"text/html": markup, "text/plain": f"{icon} {plain(text)}"}})


class TookTooLong(Exception):
    """A click's action ran past the button's time limit (not a timeout inside the action itself)."""


async def _within(coro: Awaitable[Any], seconds: float | None) -> Any:
    """`await coro` with a time limit, without the extra task `asyncio.wait_for` costs before Python 3.12."""
    if seconds is None:
        return await coro
    if hasattr(asyncio, "timeout"):  # Python 3.11+
        limit = asyncio.timeout(seconds)
        try:
            async with limit:
                return await coro
        except TimeoutError:
            if limit.expired():
                raise TookTooLong() from None
            raise
    try:
        return await asyncio.wait_for(coro, seconds)
    except asyncio.TimeoutError:
        raise TookTooLong() from None


# A click that answers sooner than this shows no busy state: its answer is its only widget message (each trait
# change is a message to the front end, about 0.3 ms in a kernel; a 10 ms update paid six of them). A slower
# action shows the busy button and the cleared answer area this long after the click.
BUSY_AFTER_S = 0.1

NO_ANSWER = "No answer within {timeout:g} s: is a worker running for this task queue?"
HELD_BY_SERVER = ("No answer within {timeout:g} s: the request is stored in the server and runs as soon as a worker "
                  "polls this task queue. Do not send it again; start the worker (or wait for it).")


class ActionButton:
    """A button that runs `action()` (a coroutine function) and shows its result or a short error.

    A click while the action runs is ignored, so a double click cannot start it twice; an action that runs longer
    than `BUSY_AFTER_S` also shows it (the button disabled, "…"), a faster one changes nothing but its answer.
    An action that takes longer than `timeout` seconds (a workflow waiting for a stopped worker, say) is
    given up with `on_timeout` (what became of the request), and the button works again. `needs` run
    first: each restores something the action needs (a stopped worker, a closed account; see
    `tutorial.readiness`) and says so with `note()`, so a click after Run All's clean-up still gives a result.
    """

    def __init__(self, description: str, action: Action, *, show: Callable[[Any], str] = _format,
                 button_style: str = "primary", tooltip: str = "", clear: bool = True,
                 timeout: float | None = 30.0, output: widgets.Output | None = None,
                 needs: Sequence[Need] = (), on_timeout: str = NO_ANSWER):
        self.action = action
        self.timeout = timeout  # a click never hangs: after this many seconds it says why it gave up
        self.on_timeout = on_timeout
        self.needs = list(needs)
        self.show = show
        self.clear = clear
        self.button = widgets.Button(description=description, button_style=button_style, tooltip=tooltip,
                                     layout=widgets.Layout(width="auto"))
        self.output = output or widgets.Output()  # several buttons may share one message area
        self.task: asyncio.Task | None = None
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self.clicks = 0
        self._busy = False  # showing the busy state (see BUSY_AFTER_S)
        self._label = description
        self.button.on_click(lambda _b: self.click())
        self.widget = widgets.VBox([self.button, self.output])

    def _ipython_display_(self) -> None:
        display(self.widget)

    def click(self) -> asyncio.Task | None:
        """What a click does: schedule the action (ignored while one is still running)."""
        if self.task is not None and not self.task.done():
            return self.task
        self.clicks += 1
        self.task = asyncio.ensure_future(self._run())  # a second click meanwhile gets this task (see above)
        return self.task

    def _show_busy(self) -> None:
        """The action is taking a while: say so (the button disabled, the last answer cleared)."""
        self._busy = True
        with self.button.hold_sync():  # one message for both traits
            self.button.disabled = True
            self.button.description = f"{self._label} …"
        if self.clear:
            self.output.outputs = ()  # the synced trait itself: clear_output() from a task may not reach the page

    def _answer(self, text: str, **kind) -> None:
        """The click's answer: replaces the last one (`clear`) in one message, and ends a busy state."""
        message(self.output, text, replace=self.clear, **kind)
        if self._busy:
            self._busy = False
            with self.button.hold_sync():
                self.button.disabled = False
                self.button.description = self._label

    async def _act(self) -> Any:
        for need in self.needs:
            await need()
        return await self.action()

    async def _run(self) -> Any:
        notes: list[str] = []
        _notes.set(notes)  # this task's own context: note() calls inside the action land here
        busy = asyncio.get_running_loop().call_later(BUSY_AFTER_S, self._show_busy)
        started = time.perf_counter()
        try:
            self.last_result = await _within(self._act(), self.timeout)
            self.last_error = None
            elapsed = (time.perf_counter() - started) * 1000
            busy.cancel()
            kind = "caution" if isinstance(self.last_result, Caution) else "ok"
            self._answer(f"{self.show(self.last_result)} <small>({elapsed:.0f} ms)</small>" + _noted(notes),
                         kind=kind)
            return self.last_result
        except Exception as err:  # every failure becomes one short line
            busy.cancel()
            self.last_error = err
            text = self.on_timeout.format(timeout=self.timeout) if isinstance(err, TookTooLong) else explain(err)
            self._answer(html.escape(text) + _noted(notes), error=True)
            return None
        finally:
            busy.cancel()
            if self._busy:  # cancelled, or the answer itself failed: the button must work again
                self._busy = False
                self.button.disabled = False
                self.button.description = self._label

    def ready(self, text: str = "ready") -> None:
        """Show a neutral line instead of the last answer: a cell that tried bad input leaves the widget clean."""
        self.output.outputs = ()
        message(self.output, html.escape(text), kind="ready")

    async def result(self) -> Any:
        """The result of the last click; runs the action once if nobody clicked yet."""
        task = self.task if self.task is not None else self.click()
        return await task


def _noted(notes: list[str]) -> str:
    return "".join(f"<br><small>· {html.escape(n)}</small>" for n in notes)


class ActionForm:
    """Labelled text fields plus a button; `parse(values)` validates (raise ValueError with a short message)
    before anything is sent, and `action(**parsed)` does the work."""

    def __init__(self, description: str, fields: dict[str, str], action: Action, *,
                 parse: Callable[[dict[str, str]], dict[str, Any]] | None = None,
                 show: Callable[[Any], str] = _format, timeout: float | None = 30.0,
                 needs: Sequence[Need] = (), on_timeout: str = NO_ANSWER):
        self.inputs = {name: widgets.Text(value=str(default), description=name,
                                          layout=widgets.Layout(width="260px"))
                       for name, default in fields.items()}
        self.parse = parse or (lambda values: values)
        self.sent = 0
        self._action = action
        self.button = ActionButton(description, self._submit, show=show, timeout=timeout, needs=needs,
                                   on_timeout=on_timeout)
        self.widget = widgets.VBox([widgets.HBox(list(self.inputs.values())), self.button.widget])

    def _ipython_display_(self) -> None:
        display(self.widget)

    def values(self) -> dict[str, str]:
        return {name: box.value for name, box in self.inputs.items()}

    def fill(self, **values: Any) -> "ActionForm":
        """Set field values (what a learner would type)."""
        for name, value in values.items():
            self.inputs[name].value = str(value)
        return self

    async def _submit(self) -> Any:
        parsed = self.parse(self.values())  # a ValueError here means nothing is sent
        self.sent += 1
        return await self._action(**parsed)

    def ready(self, text: str = "") -> None:
        """Back to a neutral "ready" line, the fields as given: what a cell leaves after trying bad input."""
        self.button.ready(text or f"ready: fill in the fields and click {self.button._label}")

    def click(self) -> asyncio.Task | None:
        return self.button.click()

    async def submit(self, **values: Any) -> Any:
        """Fill the fields, click, and wait: exactly what a learner does, for cells and tests."""
        self.fill(**values)
        self.button.task = None
        return await self.button.result()

    @property
    def output(self) -> widgets.Output:
        return self.button.output

    @property
    def last_error(self) -> BaseException | None:
        return self.button.last_error


class Progress:
    """A progress bar with a label, for anything that takes seconds: `bar.step()` in the loop."""

    REDRAW_S = 0.1

    def __init__(self, total: int, description: str = ""):
        self.total = max(1, total)
        self.done = 0
        self.started = time.perf_counter()
        self._drawn = 0.0
        self.bar = widgets.IntProgress(min=0, max=self.total, description=description,
                                       layout=widgets.Layout(width="420px"))
        self.label = widgets.Label(f"0 / {self.total}")
        self.widget = widgets.HBox([self.bar, self.label])

    def _ipython_display_(self) -> None:
        display(self.widget)

    def step(self, n: int = 1) -> None:
        """Count `n` done; the bar and its label are redrawn at most every REDRAW_S (each redraw is a widget
        message, sent from between the measured steps)."""
        self.done += n
        now = time.perf_counter()
        if now - self._drawn < self.REDRAW_S and self.done < self.total:
            return
        self._drawn = now
        self.bar.value = min(self.done, self.total)
        rate = self.done / max(1e-9, now - self.started)
        self.label.value = f"{self.done} / {self.total} ({rate:.0f}/s)"

    def finish(self, text: str = "") -> None:
        self.bar.value = self.total
        self.bar.bar_style = "success"
        elapsed = time.perf_counter() - self.started
        self.label.value = text or f"{self.done} / {self.total} in {elapsed:.1f} s"


def worker_panel(controller) -> widgets.VBox:
    """Start / Stop / Restart buttons for a `WorkerController`, and one status line that follows the worker
    wherever it is started or stopped (a cell, a button, a widget that needed it)."""
    status = widgets.HTML()

    def refresh() -> None:
        colour = "#1b5e20" if controller.running else "#b00020"
        status.value = f'<span style="color:{colour};font-family:monospace">{html.escape(controller.status())}</span>'

    async def act(what: str, done: str) -> str:
        await getattr(controller, what)()
        return done

    messages = widgets.Output()  # one message area: the newest click's outcome (the status line says the rest)
    buttons = [ActionButton(label, lambda w=what, d=done: act(w, d), button_style=style, output=messages)
               for label, what, done, style in (
                   ("Start worker", "start", "started", "success"), ("Stop worker", "stop", "stopped", "danger"),
                   ("Restart worker", "restart", "restarted: a new worker, with an empty cache", "warning"))]
    controller.watchers.append(refresh)
    refresh()
    panel = widgets.VBox([widgets.HBox([b.button for b in buttons]), status, messages])
    panel.buttons = {b._label: b for b in buttons}  # for tests: panel.buttons["Stop worker"].click()
    panel.refresh = refresh
    return panel


def answer_text(output: widgets.Output) -> str:
    """What an Output area shows, as plain text (the newest line last): for tests and the after-Run-All check."""
    return "\n".join(o.get("data", {}).get("text/plain", "") for o in output.outputs
                     if o.get("output_type") == "display_data")


FAILED_MARKS = ("✖", "⚠")  # an answer with one of these is not a result


async def click_and_read(widget: "ActionButton | ActionForm") -> str:
    """Click `widget` as a learner does (a form with the values in its fields) and return its answer's text."""
    button = widget.button if isinstance(widget, ActionForm) else widget
    button.task = None
    await button.result()
    return answer_text(button.output)


def source(obj) -> None:
    """Show the source of a workflow, activity or module, highlighted, so the notebook can discuss it."""
    display(Code(inspect.getsource(obj), language="python"))
