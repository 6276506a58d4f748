"""Call a coroutine from synchronous code, in a plain script and in a notebook alike.

This is the one place the workbook uses nest-asyncio. In a plain script there is no running loop and
`asyncio.run` does the job. In a notebook the kernel's loop is already running, so `run_until_complete` would
refuse; nest-asyncio lets the loop be re-entered. It is applied lazily on the first such call (never on import)
and then stays for the rest of the process: it patches that loop and asyncio's module functions. Notebooks should prefer top-level `await`; this exists for synchronous entry points that
learners call as plain functions, such as the workshop setup check (`check()`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion and return its result, whether or not an event loop is already running."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import nest_asyncio  # only a kernel that calls a synchronous entry point needs it

    nest_asyncio.apply(loop)
    return loop.run_until_complete(coro)
