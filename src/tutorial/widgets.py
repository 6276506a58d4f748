"""A small widget kit used by every notebook: buttons and forms that run async Temporal actions.

Widget callbacks are plain functions, but Temporal calls are coroutines, so a click schedules the action as
a task on the kernel's event loop and returns at once: the notebook stays responsive, and the result (or a
short error, never a traceback) lands in the widget's own Output area, which JupyterLab shows even when no
cell is running. A cell can `await button.result()` to get what the last click did, or run the action once
if nobody clicked: that is how nbval and the asserts see the same thing a learner sees.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ipywidgets as widgets
import pandas as pd
from IPython.display import HTML, Code, display

from .errors import explain

Action = Callable[..., Awaitable[Any]]


def _format(value: Any) -> str:
    if value is None:
        return "done"
    if hasattr(value, "_repr_html_"):
        return value._repr_html_()
    return html.escape(str(value))


def message(out: widgets.Output, text: str, *, error: bool = False) -> None:
    """Show one line in an Output area (red for errors). Works from callbacks and tasks alike.

    Sets the synced `outputs` trait directly: no display formatters to run, nothing routed through a cell.
    """
    colour = "#b00020" if error else "#1b5e20"
    icon = "✖" if error else "✔"
    markup = f'<div style="color:{colour};font-family:monospace">{icon} {text}</div>'
    out.outputs = (*out.outputs, {"output_type": "display_data", "metadata": {},
                                  "data": {"text/html": markup, "text/plain": f"{icon} {html.unescape(text)}"}})


async def _within(coro: Awaitable[Any], seconds: float | None) -> Any:
    """`await coro` with a time limit, without the extra task `asyncio.wait_for` costs before Python 3.12."""
    if seconds is None:
        return await coro
    if hasattr(asyncio, "timeout"):  # Python 3.11+
        async with asyncio.timeout(seconds):
            return await coro
    return await asyncio.wait_for(coro, seconds)


class ActionButton:
    """A button that runs `action()` (a coroutine function) and shows its result or a short error.

    While the action runs the button is disabled and says so, so a double click cannot start it twice.
    An action that takes longer than `timeout` seconds (a workflow waiting for a stopped worker, say) is
    given up with a message that says so, and the button works again.
    """

    def __init__(self, description: str, action: Action, *, show: Callable[[Any], str] = _format,
                 button_style: str = "primary", tooltip: str = "", clear: bool = True,
                 timeout: float | None = 30.0, output: widgets.Output | None = None):
        self.action = action
        self.timeout = timeout  # a click never hangs: after this many seconds it says why it gave up
        self.show = show
        self.clear = clear
        self.button = widgets.Button(description=description, button_style=button_style, tooltip=tooltip,
                                     layout=widgets.Layout(width="auto"))
        self.output = output or widgets.Output()  # several buttons may share one message area
        self.task: asyncio.Task | None = None
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        self.clicks = 0
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
        self.button.disabled = True  # at once, so a second click cannot queue a second run
        self.button.description = f"{self._label} …"
        self.task = asyncio.ensure_future(self._run())
        return self.task

    async def _run(self) -> Any:
        if self.clear:
            self.output.outputs = ()  # the synced trait itself: clear_output() from a task may not reach the page
        started = time.perf_counter()
        try:
            self.last_result = await _within(self.action(), self.timeout)
            self.last_error = None
            elapsed = (time.perf_counter() - started) * 1000
            message(self.output, f"{self.show(self.last_result)} <small>({elapsed:.0f} ms)</small>")
            return self.last_result
        except Exception as err:  # every failure becomes one short line
            self.last_error = err
            message(self.output, html.escape(explain(err)), error=True)
            return None
        finally:
            self.button.disabled = False
            self.button.description = self._label

    async def result(self) -> Any:
        """The result of the last click; runs the action once if nobody clicked yet."""
        task = self.task if self.task is not None else self.click()
        return await task


class ActionForm:
    """Labelled text fields plus a button; `parse(values)` validates (raise ValueError with a short message)
    before anything is sent, and `action(**parsed)` does the work."""

    def __init__(self, description: str, fields: dict[str, str], action: Action, *,
                 parse: Callable[[dict[str, str]], dict[str, Any]] | None = None,
                 show: Callable[[Any], str] = _format, timeout: float | None = 30.0):
        self.inputs = {name: widgets.Text(value=str(default), description=name,
                                          layout=widgets.Layout(width="260px"))
                       for name, default in fields.items()}
        self.parse = parse or (lambda values: values)
        self.sent = 0
        self._action = action
        self.button = ActionButton(description, self._submit, show=show, timeout=timeout)
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

    def __init__(self, total: int, description: str = ""):
        self.total = max(1, total)
        self.done = 0
        self.started = time.perf_counter()
        self.bar = widgets.IntProgress(min=0, max=self.total, description=description,
                                       layout=widgets.Layout(width="420px"))
        self.label = widgets.Label(f"0 / {self.total}")
        self.widget = widgets.HBox([self.bar, self.label])

    def _ipython_display_(self) -> None:
        display(self.widget)

    def step(self, n: int = 1) -> None:
        self.done += n
        self.bar.value = min(self.done, self.total)
        if self.done % max(1, self.total // 50) == 0 or self.done >= self.total:
            rate = self.done / max(1e-9, time.perf_counter() - self.started)
            self.label.value = f"{self.done} / {self.total} ({rate:.0f}/s)"

    def finish(self, text: str = "") -> None:
        self.bar.value = self.total
        self.bar.bar_style = "success"
        elapsed = time.perf_counter() - self.started
        self.label.value = text or f"{self.done} / {self.total} in {elapsed:.1f} s"


def worker_panel(controller) -> widgets.VBox:
    """Start / Stop / Restart buttons for a `WorkerController`, with its status line kept up to date."""
    status = widgets.HTML()

    def refresh() -> None:
        colour = "#1b5e20" if controller.running else "#b00020"
        status.value = f'<span style="color:{colour};font-family:monospace">{html.escape(controller.status())}</span>'

    async def act(what: str) -> str:
        await getattr(controller, what)()
        refresh()
        return controller.status()

    messages = widgets.Output()  # one message area: the newest click's outcome
    buttons = [ActionButton(label, lambda w=what: act(w), button_style=style, output=messages)
               for label, what, style in (("Start worker", "start", "success"), ("Stop worker", "stop", "danger"),
                                          ("Restart worker", "restart", "warning"))]
    refresh()
    panel = widgets.VBox([widgets.HBox([b.button for b in buttons]), status, messages])
    panel.buttons = {b._label: b for b in buttons}  # for tests: panel.buttons["Stop worker"].click()
    panel.refresh = refresh
    return panel


def source(obj) -> None:
    """Show the source of a workflow, activity or module, highlighted, so the notebook can discuss it."""
    display(Code(inspect.getsource(obj), language="python"))


def table(rows: list[dict] | dict, title: str = "") -> None:
    """Show a small table (list of dicts, or one dict) with an optional bold title."""
    frame = pd.DataFrame([rows] if isinstance(rows, dict) else rows)
    if title:
        display(HTML(f"<b>{html.escape(title)}</b>"))
    display(frame.style.hide(axis="index").format(precision=2).set_properties(**{"text-align": "left"})
            .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))
