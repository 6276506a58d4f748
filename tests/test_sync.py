"""run_sync works from a plain script and from inside a running loop (a notebook), without patching on import."""

from __future__ import annotations

import asyncio

from tutorial.sync import run_sync


async def twice(x):
    await asyncio.sleep(0)
    return 2 * x


def test_plain_code_without_a_loop():
    assert run_sync(twice(21)) == 42


def test_synchronous_call_inside_a_running_loop():
    async def notebook_cell():
        return run_sync(twice(4))  # what a widget callback or `check()` does in a kernel

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(notebook_cell()) == 8
    finally:
        loop.close()


def test_importing_the_package_does_not_patch_asyncio():
    import subprocess
    import sys

    code = "import asyncio, tutorial.sync, tutorial.server; print(hasattr(asyncio, '_nest_patched'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False"
