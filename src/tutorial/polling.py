"""The one poller: ask again until something holds, or give up with a message that says what to check.

Every "wait until" in the workbook is this loop: a query until a signal's change is visible (C11), the server's
view until no workflow task is pending, an entity until it has applied what was sent. The probe is any
coroutine (a query, a `describe`, a read of the database); `holds` decides whether its answer is the one
we wait for. Waits start short and double, so a fast answer is seen fast and a slow one costs few calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import WorkbookError

T = TypeVar("T")


class GaveUp(WorkbookError, TimeoutError):
    """The awaited condition did not hold in time. A `WorkbookError` (its message is for the learner) and a
    `TimeoutError` (so code that waits with a time limit can catch it as one)."""

    def __init__(self, message: str, last: Any = None, tries: int = 0):
        super().__init__(message)
        self.last = last  # the probe's last answer (None if it never answered)
        self.tries = tries


@dataclass
class Seen(Generic[T]):
    """What `until` found: the answer that held, and what it took to get it."""

    value: T
    tries: int  # probes sent; 1 means the first answer already held
    seconds: float

    @property
    def queries(self) -> int:  # the word the signal notebooks use
        return self.tries


async def until(probe: Callable[[], Awaitable[T]], holds: Callable[[T], bool] = bool, *,
                timeout: float = 10.0, interval: float = 0.01, max_interval: float = 0.2,
                gave_up: str | Callable[[T | None], str] = "the condition did not hold",
                retry_if: Callable[[BaseException], bool] | None = None) -> Seen[T]:
    """Call `probe()` until `holds(answer)`; return the answer. After `timeout` seconds raise `GaveUp`.

    A probe that hangs (a query while no worker runs) is cut off at the deadline too. `gave_up` is the
    message, or a function of the last answer that writes it; the time spent and tries are appended.
    `retry_if(error)`: errors the probe may raise that mean "not yet" (others propagate at once).
    """
    started = time.perf_counter()
    deadline = started + timeout
    tries, pause, last = 0, interval, None
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        tries += 1
        try:
            last = await asyncio.wait_for(probe(), remaining)
        except asyncio.TimeoutError:
            break
        except Exception as err:  # noqa: BLE001 - only the kinds the caller named are waited out
            if retry_if is None or not retry_if(err):
                raise
        else:
            if holds(last):
                return Seen(value=last, tries=tries, seconds=time.perf_counter() - started)
        await asyncio.sleep(max(0.0, min(pause, deadline - time.perf_counter())))
        pause = min(pause * 2, max_interval)
    text = gave_up(last) if callable(gave_up) else gave_up
    raise GaveUp(f"{text} (gave up after {timeout:g} s, {tries} tries)", last=last, tries=tries)
