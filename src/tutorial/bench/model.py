"""What the benchmark measures and what one run found: `Settings`, `Latency`, `Throughput`, `Results`.

Plain data and the figures derived from it (percentiles, ratios to the floor, the helpers' overhead); no I/O.
The measurement fills a `Results` (`measure.run`), the report and the chart read it.
"""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELPER_LIMIT = 1.05  # a click through the workbook's helpers may add at most 5% to an update (in a kernel too)

# key -> label, in the order they are printed. Every key is one latency row; THROUGHPUT_KEYS also get
# one row per number of callers.
LABELS = {
    "floor": "floor: bare gRPC round trip (DescribeNamespace)",
    "per_request": "workflow-per-request: start + result",
    "signal": "signal accepted",
    "signal_query": "signal, then query until visible",
    "query": "query",
    "update": "update (result returned)",
    "update_with_start": "update-with-start (new entity)",
    "update_raw": "update via raw SDK (paired)",
    "update_helper": "update via ActionForm.submit (paired)",
}
THROUGHPUT_KEYS = ("floor", "per_request", "signal", "signal_query", "query", "update", "update_with_start")
# Two rhythms for one caller. BACK TO BACK: the next call the moment the last returned (a script hammering one
# entity). PACED: a pause drawn at random before every call, the way a user clicks; the interactions take turns
# in shuffled rounds, so none sees the server busier than another. The decision table uses the paced figures:
# a click is what a learner (and a user of their app) makes, and back to back the dev server's transfer-queue
# read limit (20 reads a second on its one history shard, docs/latency/FINDINGS.md) paces every call that needs
# a new workflow task at 50 ms, whatever the pattern costs. A production cluster has the same limit per shard
# but hundreds of shards: one entity hammered faster than 20 times a second meets it there too, a click does not.
BACK_TO_BACK, PACED = "back to back", "paced"
PACED_KEYS = THROUGHPUT_KEYS
PAUSE_MS = (30.0, 200.0)  # a paced call waits this long first, drawn uniformly at random
# back to back, these rows need the server to read its transfer queue (a new workflow task, an activity, a
# close) before the client has its answer: untimed calls first (at least `settle`, until they have spent the
# limit's bucket) bring it to its steady state (calls after an idle spell ride its burst of 20: the issue's
# 8.8 ms), whatever ran before
SETTLE_KEYS = ("per_request", "signal_query")
OVERLOAD_KEYS = ("update", "signal_query")
EVENT_KEYS = ("per_request", "signal", "signal_query", "query", "update", "update_with_start")  # what they add

# notebook 07's form: a short run, bounded so that a typo cannot keep the kernel busy for an hour
FORM_MAX_REPETITIONS = 200
FORM_MAX_CALLERS = 128


@dataclass
class Settings:
    """What to measure and how much. The defaults are the command's; notebook 07 uses smaller ones."""

    n: int = 50  # timed repetitions per latency row
    warmup: int = 5  # untimed repetitions before them
    concurrency: tuple[int, ...] = (1, 8, 64)
    duration: float = 1.0  # seconds per throughput cell
    overload: bool = True
    overload_reps: int = 10  # timed repetitions per overloaded row (each takes a few hundred ms)
    overload_entities: int = 8  # busy entities hammering the overloaded worker
    overload_handler_ms: float = 5.0  # how long each of their handlers takes
    cleanup: bool = True  # close every entity at the end (leave nothing running on a shared cluster)
    paced_n: int = 20  # timed repetitions per paced row (each after a pause of PAUSE_MS)
    pause_ms: tuple[float, float] = PAUSE_MS
    settle: int = 20  # at least this many untimed back-to-back calls before each SETTLE_KEYS row (0: none)
    seed: int | None = None  # the paced pauses' and rounds' random generator (None: a new draw each run)

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be at least 1, not {self.n}")
        if self.warmup < 0:
            raise ValueError(f"warm-up must be 0 or more, not {self.warmup}")
        if not self.concurrency or any(c < 1 for c in self.concurrency):
            raise ValueError(f"concurrency must be whole numbers of at least 1, not {self.concurrency}")
        if self.overload_reps < 1:
            raise ValueError(f"overload_reps must be at least 1, not {self.overload_reps}")
        if self.duration <= 0:
            raise ValueError(f"duration must be positive, not {self.duration}")
        if self.paced_n < 0 or self.settle < 0:
            raise ValueError(f"paced_n and settle must be 0 or more, not {self.paced_n} and {self.settle}")
        low, high = self.pause_ms
        if not 0 <= low <= high <= 5000:
            raise ValueError(f"pauses must be 0 <= min <= max <= 5000 ms, not {low:g}-{high:g}")
        self.concurrency = tuple(sorted(set(self.concurrency)))

    def units(self) -> int:
        """Progress units: one per latency repetition (settling and paced ones too), 20 per throughput cell, one
        per overloaded repetition, two per replayed history."""
        reps = self.warmup + self.n
        latency = reps * (len(LABELS) - 2) + 2 * reps + self.settle * len(SETTLE_KEYS)
        paced = self.paced_n * len(PACED_KEYS)
        overload = len(OVERLOAD_KEYS) * self.overload_reps if self.overload else 0
        return latency + paced + 20 * len(THROUGHPUT_KEYS) * len(self.concurrency) + overload + 2 * 12


def settings_from_form(values: dict[str, str]) -> Settings:
    """Notebook 07's form (`repetitions`, `callers` as typed) -> a short run's `Settings`.

    Raises ValueError with one short line for anything that is not a sensible run, before anything is sent."""
    try:
        n = int(values["repetitions"])
        callers = tuple(int(c) for c in values["callers"].split(",") if c.strip())
    except ValueError:
        raise ValueError("repetitions: a whole number; callers: whole numbers separated by commas") from None
    if n < 1:
        raise ValueError(f"repetitions: at least 1, not {n}")
    if not callers or min(callers) < 1:
        raise ValueError("callers: one or more whole numbers of at least 1, separated by commas")
    if n > FORM_MAX_REPETITIONS or max(callers) > FORM_MAX_CALLERS:
        raise ValueError(f"at most {FORM_MAX_REPETITIONS} repetitions and {FORM_MAX_CALLERS} callers here "
                         "(the command line takes more)")
    return Settings(n=n, warmup=3, concurrency=callers, duration=0.3, overload_reps=5, paced_n=n)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), linear interpolation between the two nearest values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine() -> str:
    """This machine in one line: cores, CPU model, Python version."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {cpu or 'unknown CPU'}, Python {platform.python_version()}"


@dataclass
class Latency:
    key: str
    samples_ms: list[float]
    events_per_op: float | None = None
    note: str = ""
    own_ms: list[float] = field(default_factory=list)  # the helpers' row: each click's time outside the update

    @property
    def p50(self) -> float:
        return percentile(self.samples_ms, 50)

    @property
    def p95(self) -> float:
        return percentile(self.samples_ms, 95)

    @property
    def mean(self) -> float:
        return sum(self.samples_ms) / len(self.samples_ms) if self.samples_ms else float("nan")


@dataclass
class Throughput:
    key: str
    callers: int
    ops: int
    seconds: float
    errors: int = 0
    first_error: str = ""

    @property
    def per_s(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Results:
    """Everything one run measured, with the figures a notebook asserts on."""

    settings: Settings
    target: str = ""
    machine: str = ""  # where it ran (`machine()`)
    latency: dict[str, Latency] = field(default_factory=dict)
    throughput: dict[tuple[str, int], Throughput] = field(default_factory=dict)
    replay_ms_per_1000: list[float] = field(default_factory=list)
    replay_events: list[int] = field(default_factory=list)
    replay_ms: list[float] = field(default_factory=list)  # one per replay, beside its history's length
    replay_per_1000_events: list[int] = field(default_factory=list)  # lengths behind replay_ms_per_1000
    replay_fixed_ms: float = 0.0  # one replay of the shortest history: mostly the replayer's start-up
    overloaded: dict[str, Latency] = field(default_factory=dict)
    signal_queries: list[int] = field(default_factory=list)  # queries each measured deposit needed to be seen
    request_history_lengths: list[int] = field(default_factory=list)  # first and last measured request's events
    seconds: float = 0.0
    kernel_clicks: Any = None  # `clicks.ClickCost`: the helpers' pairs again, in a Jupyter kernel (the command)
    paced: dict[str, Latency] = field(default_factory=dict)  # the same interactions, PACED (see above)
    # the last round trips of each row, (rhythm, key) -> `round_trips.Trip`s, and their parts (`round_trips`)
    trips: dict[tuple[str, str], list] = field(default_factory=dict)
    round_trips: dict[tuple[str, str], Any] = field(default_factory=dict)
    settled: dict[str, int] = field(default_factory=dict)  # untimed calls spent on the read limit, per row

    @property
    def floor_ms(self) -> float:
        return self.latency["floor"].p50

    def x_floor(self, ms: float, rhythm: str = BACK_TO_BACK) -> float:
        """`ms` in floors: the bare round trip measured in the same rhythm."""
        floor = self.paced["floor"].p50 if rhythm == PACED and "floor" in self.paced else self.floor_ms
        return ms / floor if floor > 0 else float("nan")

    def chosen(self, key: str) -> Latency:
        """The figure the decision table uses for `key`: paced if measured (see PACED), else back to back."""
        return self.paced.get(key) or self.latency[key]

    @property
    def chosen_rhythm(self) -> str:
        return PACED if self.paced else BACK_TO_BACK

    def pace_ratio(self, key: str) -> float:
        """Back-to-back p50 over paced p50: above 1, hammering costs more than clicking."""
        return self.latency[key].p50 / self.paced[key].p50

    @property
    def helper_ratio(self) -> float:
        """p50 of the update through the workbook's helpers over p50 of the same update through the raw SDK."""
        return self.latency["update_helper"].p50 / self.latency["update_raw"].p50

    @property
    def helper_paired_overhead_ms(self) -> float:
        """Median of (helper - raw) over interleaved pairs, in ms: what the helpers add, with drift cancelled."""
        raw, helper = self.latency["update_raw"].samples_ms, self.latency["update_helper"].samples_ms
        return percentile([h - r for h, r in zip(helper, raw)], 50)

    @property
    def helper_paired_overhead(self) -> float:
        """The paired overhead as a fraction of the raw update's p50."""
        return self.helper_paired_overhead_ms / self.latency["update_raw"].p50

    @property
    def helper_within_budget(self) -> bool:
        """The paired overhead is under HELPER_LIMIT (the terminal run's verdict)."""
        return self.helper_paired_overhead < HELPER_LIMIT - 1

    @property
    def replay_p50(self) -> float:
        return percentile(self.replay_ms_per_1000, 50)

    @property
    def replay_p95(self) -> float:
        return percentile(self.replay_ms_per_1000, 95)

    def replay_ms_at(self, events: float) -> float:
        """The replay time of a history of `events` events, at this run's p50 per 1,000 events."""
        return self.replay_p50 * events / 1000

    def overload_ratio(self, key: str) -> float:
        """How many times slower the interaction's p50 is on the overloaded worker."""
        return self.overloaded[key].p50 / self.latency[key].p50

    def events_per_op(self) -> dict[str, float]:
        """History events each interaction adds (EVENT_KEYS that were measured; a request's whole history)."""
        return {k: self.latency[k].events_per_op or 0.0 for k in EVENT_KEYS if k in self.latency}
