"""The benchmark command, `python -m tutorial.bench`: one run with tiny N has every row, in its output and its
CSV, and draws its chart; bad input gets one clear line and a non-zero exit."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from conftest import temporal_pids

from tutorial import polling
from tutorial import bench, server
from tutorial.bench import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def command(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tutorial.bench", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, **env}, timeout=600)  # a busy CI machine is slow, not wrong


def test_a_tiny_run_has_every_row_in_its_output_csv_and_chart(run, client, tmp_path):
    # against the session's server, as against a workshop cluster: the command must not stop it
    address = server.server_info().address
    done = command(["-n", "2", "--warmup", "1", "--paced", "2", "--duration", "0.1", "--concurrency", "1,4",
                    "--out", str(tmp_path)],
                   TEMPORAL_ADDRESS=address)  # two concurrencies, short: the rows are what this test is about
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for label in bench.LABELS.values():
        assert label in out, f"missing row {label!r}"
    assert "helpers: update via ActionForm.submit" in out and "replay: p50" in out
    assert "back to back vs paced" in out and "the decision table uses the paced figures" in out
    assert "signal, then query until visible · back to back" in out, "where a round trip's time goes"
    assert "a click in a Jupyter kernel: update via ActionForm.submit" in out, done.stderr[-1000:]
    assert out.count("overloaded worker:") == len(bench.OVERLOAD_KEYS)
    assert "throughput: update x 4" in done.stderr, "the progress line names each phase"

    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    found = {(r["section"], r["key"], r["callers"]) for r in rows}
    expected = {("latency", key, "1") for key in bench.LABELS}
    expected |= {("throughput", key, str(c)) for key in bench.THROUGHPUT_KEYS for c in (1, 4)}
    expected |= {("helpers", "helper_ratio", "1"), ("replay", "replay", "1")}
    expected |= {("paced", key, "1") for key in bench.PACED_KEYS}
    expected |= {("round trip", key, "1") for key in ("per_request", "signal_query", "update")}
    expected |= {("overloaded", key, "1") for key in bench.OVERLOAD_KEYS}
    assert expected <= found, expected - found
    latency = {r["key"]: r for r in rows if r["section"] == "latency"}
    assert float(latency["floor"]["p50_x_floor"]) == 1.0
    for key, row in latency.items():
        assert float(row["p50_ms"]) > 0 and float(row["p95_ms"]) >= float(row["p50_ms"]), row
    assert float(latency["query"]["events_per_op"]) == 0, "a query adds nothing to the history"
    assert float(latency["update"]["events_per_op"]) > 0 and float(latency["per_request"]["events_per_op"]) > 0
    throughput = [r for r in rows if r["section"] == "throughput"]
    assert all(float(r["ops_per_s"]) > 0 and not r["note"] for r in throughput), "no errors, some progress"

    png = (tmp_path / "results.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert (tmp_path / "round_trips.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert server.server_info().address == address

    async def still_running() -> list[str]:
        return [w.id async for w in client.list_workflows("ExecutionStatus='Running'") if "-bench-" in w.id]

    try:  # the list is eventually consistent: give it a few seconds
        run(polling.until(still_running, lambda left: left == [], timeout=10))
    except polling.GaveUp as err:
        left = err.last
        raise AssertionError(f"on a shared server the command closes every entity it opened: {left[:5]}") from None


def started_by(marker: str) -> set[int]:
    """`temporal` processes that inherited `marker` in their environment (other tests' servers do not)."""
    found = set()
    for pid in temporal_pids():
        try:
            if f"BENCH_PROBE={marker}".encode() in open(f"/proc/{pid}/environ", "rb").read().split(b"\0"):
                found.add(pid)
        except OSError:
            pass
    return found


def test_with_the_embedded_server_it_stops_the_server_it_started(tmp_path):
    marker = os.urandom(6).hex()
    done = command(["-n", "1", "--warmup", "0", "--paced", "1", "--concurrency", "1", "--duration", "0.1", "--no-overload",
                    "--no-kernel",
                    "--out", str(tmp_path)], TEMPORAL_ADDRESS="", BENCH_PROBE=marker)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "embedded dev server" in done.stdout and (tmp_path / "results.csv").exists()
    assert started_by(marker) == set(), "the command left its temporal server behind"


def test_the_leftover_check_sees_a_server_that_is_still_running(run):
    marker = os.urandom(6).hex()
    os.environ["BENCH_PROBE"] = marker
    try:
        leftover = server.EmbeddedServer()
        run(leftover.start())
    finally:
        del os.environ["BENCH_PROBE"]
    try:
        assert started_by(marker) == {leftover.process.pid}
    finally:
        leftover.stop()
    assert started_by(marker) == set()


def test_help_lists_every_option_and_exits_0():
    done = command(["--help"])
    assert done.returncode == 0, done.stderr
    for option in ("--repeat", "--warmup", "--paced", "--concurrency", "--duration", "--no-kernel", "--no-overload",
                   "--out"):
        assert option in done.stdout


@pytest.mark.parametrize("args, says", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["-n", "0"], "must be at least 1, not 0"),
    (["-n", "ten"], "must be a whole number, not 'ten'"),
    (["--concurrency", "1,0"], "each must be at least 1, not 0"),
    (["--duration", "-1"], "more than 0"),
])
def test_bad_options_get_one_line_and_exit_2(capsys, args, says):
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1, err


def test_the_options_become_settings():
    settings = cli.settings_from_args(cli.parser().parse_args(
        ["-n", "40", "--warmup", "2", "--paced", "7", "--concurrency", "4,1", "--duration", "0.5", "--no-overload"]))
    assert (settings.n, settings.warmup, settings.concurrency, settings.duration) == (40, 2, (1, 4), 0.5)
    assert settings.paced_n == 7
    assert not settings.overload and settings.overload_reps == 8  # N/5, between 3 and 10
    defaults = cli.settings_from_args(cli.parser().parse_args([]))
    assert defaults.n == bench.Settings.n and defaults.overload and defaults.overload_reps == 10


def test_a_server_that_is_down_gets_one_line_and_exit_1(monkeypatch, capsys):
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{server.free_port()}")
    assert cli.main(["-n", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error: Nothing is listening at 127.0.0.1:") and len(err.splitlines()) == 1, err
