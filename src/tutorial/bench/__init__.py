"""Measure every way a client talks to a workflow, side by side, in one run: `python -m tutorial.bench`.

Against the embedded dev server (or ``TEMPORAL_ADDRESS``), with a worker inside this process, it measures:

- **latency**, one caller at a time, in two rhythms: *paced* (a pause drawn at random before every call, as
  between a user's clicks: what the decision table uses) and *back to back* (the next call at once, after a
  warm-up and, where the server's transfer queue is on the path, enough calls to reach its steady state): the floor (a bare gRPC round trip, DescribeNamespace);
  workflow-per-request start + result; signal accepted; signal then query until visible; query; update;
  update-with-start (a new entity each time); and the same update through the workbook's helpers
  (`widgets.ActionForm.submit`, what every notebook's form does) and through the raw SDK, interleaved, so the
  helpers' cost is a ratio measured in the same seconds;
- **where one round trip's time goes**, per interaction and rhythm: the history's timestamps beside the client's
  clock (`tutorial.round_trips`): to the server, in a queue, in the worker, in the server, back;
- **throughput** of each interaction with 1, 8 and 64 concurrent callers (each caller on its own entity);
- **history events** each interaction adds, and **replay** time per 1,000 events (`temporalio.worker.Replayer`
  on histories fetched from the server);
- **an overloaded worker** (C13): the same update and signal-then-query on a worker that runs one workflow task
  at a time (two, see `measure.OVERLOAD_SLOTS`) while busy entities with slow handlers keep it occupied.

The command prints p50 and p95 and each figure as a ratio to the floor, writes ``results.csv``, ``results.png``
and ``round_trips.png`` to ``--out`` (default ``build/bench``), and shows a progress line on stderr; last, it
measures a click's cost again inside a Jupyter kernel (`clicks`), where widgets talk to a front end. Notebook 07
runs a short version of the same measurement through `run(client, settings_from_form(...), progress=widgets.Progress(...))`
and draws it with `tutorial.charts.bench.chart`.

One job per module: `model` (Settings, Results and the figures derived from them), `measure` (the run),
`clicks` (the click's cost in a kernel),
`progress` (the terminal's progress line), `report` (text, CSV, notebook 07's
tables, the decision table, and `first_limit`: which per-run limit binds first),
`cli` (the command). The workflows are `tutorial.workflows.bench_account`: the shapes of notebooks 01-03, kept
minimal so this measures Temporal, not the lesson code.
"""

from .measure import run
from .model import (
    BACK_TO_BACK,
    HELPER_LIMIT,
    LABELS,
    OVERLOAD_KEYS,
    PACED,
    PACED_KEYS,
    PAUSE_MS,
    THROUGHPUT_KEYS,
    Latency,
    Results,
    Settings,
    Throughput,
    machine,
    percentile,
    settings_from_form,
)
from .progress import TerminalProgress
from .report import (
    CSV_FIELDS,
    CAPS,
    DECISION_WHY,
    HELPER_KEYS,
    PATTERNS,
    UNTIL_LIMIT,
    against_floor,
    as_text,
    decision_table,
    events_table,
    first_limit,
    frame,
    latency_table,
    pacing_table,
    replay_table,
    round_trip_table,
    rows,
    throughput_table,
    update_cap_binds_first,
    write_csv,
)

__all__ = ["BACK_TO_BACK", "CAPS", "CSV_FIELDS", "DECISION_WHY", "HELPER_LIMIT", "LABELS", "OVERLOAD_KEYS", "PACED",
           "PACED_KEYS", "PATTERNS", "PAUSE_MS", "THROUGHPUT_KEYS", "UNTIL_LIMIT", "Latency", "Results", "Settings",
           "TerminalProgress", "Throughput", "against_floor", "as_text", "decision_table", "events_table",
           "first_limit", "frame", "latency_table", "machine", "pacing_table", "percentile", "replay_table",
           "round_trip_table", "rows", "run", "settings_from_form", "throughput_table", "update_cap_binds_first",
           "write_csv"]
