"""The benchmark's progress: a line on a terminal's stderr, or a `widgets.Progress` bar in a notebook.

`measure.run` takes anything with `step(n)`; `show_phase` names the phase on either kind.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class TerminalProgress:
    """A one-line progress bar on stderr (redrawn in place on a terminal, a line per phase otherwise)."""

    def __init__(self, total: int, description: str = "bench", stream=None):
        self.total = max(1, total)
        self.done = 0
        self.phase = ""
        self.description = description
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.perf_counter()
        self._drawn = 0.0

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        if not self.tty:
            print(f"{self.description}: {phase} ({time.perf_counter() - self.started:.0f} s)", file=self.stream)
        self._draw(force=True)

    def step(self, n: int = 1) -> None:
        self.done += n
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.tty or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        share = min(1.0, self.done / self.total)
        bar = "#" * int(share * 30)
        line = f"\r{self.description} [{bar:<30}] {share:4.0%} {now - self.started:5.1f} s  {self.phase}"
        self.stream.write(line[:110].ljust(110))
        self.stream.flush()

    def finish(self, text: str = "") -> None:
        self.done = self.total
        if self.tty:
            self._draw(force=True)
            self.stream.write("\n")
        if text:
            print(text, file=self.stream)


def show_phase(progress: Any, text: str) -> None:
    """Name the phase now running: on a `TerminalProgress` line, or in a `widgets.Progress` bar's label."""
    if hasattr(progress, "set_phase"):
        progress.set_phase(text)
    elif hasattr(progress, "bar"):  # widgets.Progress: show the phase in the bar's description
        progress.bar.description = text[:20]
