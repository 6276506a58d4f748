"""The command, `python -m tutorial.bench`: options, one run, the report on stdout, CSV and PNG in ``--out``.

Exit status: 0 ok, 1 the run failed (one line on stderr saying why), 2 bad options (one line), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from .. import server
from ..charts import round_trips as round_trip_charts
from ..charts.bench import write_png
from ..errors import WorkbookError, explain
from .measure import run
from .model import LABELS, Settings
from . import clicks
from .progress import TerminalProgress, show_phase
from .report import as_text, write_csv


KERNEL_PAIRS = 100  # at least this many pairs in the kernel: a paired median of a 5% effect needs them here


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _int_at_least(minimum: int):
    """An argparse type: a whole number no smaller than `minimum`, with a one-line reason otherwise."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value
    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _callers(text: str) -> tuple[int, ...]:
    try:
        return tuple(_positive_int(part) for part in text.split(",") if part.strip())
    except argparse.ArgumentTypeError as err:
        raise argparse.ArgumentTypeError(f"a comma-separated list of callers, each {err}") from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, not {text!r}") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 60 seconds, not {value:g}")
    return value


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m tutorial.bench",
                description="Measure every way a client talks to a Temporal workflow, side by side, against the "
                            "embedded dev server (or TEMPORAL_ADDRESS).")
    p.add_argument("-n", "--repeat", type=_positive_int, default=Settings.n, metavar="N",
                   help=f"timed repetitions per latency row (default {Settings.n})")
    p.add_argument("--warmup", type=_non_negative_int, default=Settings.warmup, metavar="W",
                   help=f"untimed repetitions before them (default {Settings.warmup})")
    p.add_argument("--concurrency", type=_callers, default=Settings.concurrency, metavar="C,C,...",
                   help="concurrent callers for the throughput rows (default 1,8,64)")
    p.add_argument("--duration", type=_seconds, default=Settings.duration, metavar="SECONDS",
                   help=f"seconds per throughput measurement (default {Settings.duration:g})")
    p.add_argument("--paced", type=_non_negative_int, default=Settings.paced_n, metavar="P",
                   help=f"timed repetitions per paced row, each after a random pause of "
                        f"{Settings.pause_ms[0]:g}-{Settings.pause_ms[1]:g} ms (default {Settings.paced_n}; 0: none)")
    p.add_argument("--no-kernel", action="store_true",
                   help="skip the click's cost in a Jupyter kernel (the helpers' pairs again, where widgets talk to "
                        "a front end; a few seconds)")
    p.add_argument("--no-overload", action="store_true",
                   help="skip the overloaded-worker rows (C13; they repeat N/5 times, at least 3, at most 10)")
    p.add_argument("--out", type=Path, default=Path("build/bench"), metavar="DIR",
                   help="where results.csv, results.png and round_trips.png go (default build/bench)")
    return p


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings(n=args.repeat, warmup=args.warmup, concurrency=args.concurrency, duration=args.duration,
                    overload=not args.no_overload, overload_reps=max(3, min(10, args.repeat // 5)),
                    paced_n=args.paced)


async def _main(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    wall = time.perf_counter()
    progress = TerminalProgress(settings.units())
    try:
        already = server.server_info()
    except WorkbookError:
        already = None
    client = await server.connect(quiet=True)
    info = server.server_info()
    owned = info.embedded and already is None  # stop only a server this command started
    settings.cleanup = not owned  # a server we stop takes its workflows with it
    target = f"{'embedded dev server' if info.embedded else 'server'} {info.address}"
    try:
        results = await run(client, settings, progress=progress, target=target)
        if not args.no_kernel:
            show_phase(progress, "a click in a Jupyter kernel")
            try:
                results.kernel_clicks = await clicks.in_kernel(info.address, info.namespace,
                                                               n=max(settings.n, KERNEL_PAIRS), warmup=settings.warmup)
            except Exception as err:  # the rest of the run stands; say why this figure is missing
                results.kernel_clicks = f"not measured: {explain(err)}"
    finally:
        if owned:
            server.stop_server()
    csv_path = write_csv(results, args.out / "results.csv")
    png_path = write_png(results, args.out / "results.png")
    trips_path = round_trip_charts.write_png(results.round_trips, LABELS, args.out / "round_trips.png")
    progress.finish()
    print(as_text(results))
    print(f"\nmachine: {results.machine}")
    print(f"wrote {csv_path}, {png_path} and {trips_path}; whole run {time.perf_counter() - wall:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command; returns the exit status (0 ok, 1 the run failed, 2 bad options, 130 interrupted)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as done:  # --help (0) or a bad option (2, its one-line message already printed)
        return int(done.code or 0)
    newline = "\n" if sys.stderr.isatty() else ""  # end the progress line first
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        print(f"{newline}bench: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # WorkbookError (server down, no binary) and anything Temporal raised
        print(f"{newline}bench: error: {explain(err)}", file=sys.stderr)
        return 1
