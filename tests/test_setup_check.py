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
