"""One way to ask whether a learner attempted an exercise.

Every exercise cell ships a stub that raises `NotImplementedError`. The check cell calls the learner's
function once with a harmless probe: the stub still raises it, so the cell checks the shipped solution
instead; anything else (a result, or another error) is an attempt, and the check then says what is wrong.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


async def attempted(probe: Callable[[], Any]) -> bool:
    """False while `probe()` (a call of the learner's function, sync or async) raises NotImplementedError."""
    try:
        result = probe()
        if inspect.isawaitable(result):
            await result
    except NotImplementedError:
        return False
    except Exception:  # noqa: BLE001 - an attempt, even a broken one: the check will say what is wrong
        return True
    return True
