"""The attendees' setup check: passes on a good machine, and names the fix when the server is unreachable."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tutorial import server


def run_check(**env):
    merged = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    merged.update(env)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "tutorial.setup_check"], capture_output=True, text=True,
                         timeout=120, env=merged)
    return out, time.monotonic() - started


def test_a_good_machine_is_ready():
    out, _ = run_check()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "OK    a workflow completes" in out.stdout and "Ready for the workshop." in out.stdout


def test_an_unreachable_cluster_fails_fast_with_the_fix():
    port = server.free_port()
    out, seconds = run_check(TEMPORAL_ADDRESS=f"127.0.0.1:{port}")
    assert out.returncode == 1
    assert "FAIL  Temporal server" in out.stdout and "connection refused" in out.stdout
    assert "-> unset TEMPORAL_ADDRESS" in out.stdout
    assert seconds < 30


def test_a_missing_package_is_a_fail_line_with_the_fix_not_a_traceback():
    # A fresh interpreter in which temporalio cannot be imported and is not installed, as on a machine where
    # the setup never ran: the check must get as far as saying so.
    code = (
        "import importlib.metadata as m, sys\n"
        "sys.modules['temporalio'] = None\n"
        "real = m.version\n"
        "def version(name):\n"
        "    if name == 'temporalio':\n"
        "        raise m.PackageNotFoundError(name)\n"
        "    return real(name)\n"
        "m.version = version\n"
        "from tutorial.setup_check import main\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TEMPORAL_ADDRESS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    print(out.stdout, out.stderr)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "FAIL  package temporalio" in out.stdout and "-> run ./workbook.sh lab" in out.stdout
    assert "Temporal server" not in out.stdout, "nothing that needs temporalio was tried"
