"""What one run found, written out: the text report, the CSV, notebook 07's tables and the decision table.

Everything here reads a `model.Results` and returns text or a DataFrame; nothing measures or draws (the chart
is `tutorial.charts.bench`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pandas as pd

from .. import limits
from ..round_trips import STAGES
from .model import BACK_TO_BACK, HELPER_LIMIT, LABELS, PACED, THROUGHPUT_KEYS, Latency, Results, percentile

CSV_FIELDS = ("section", "key", "interaction", "callers", "n", "p50_ms", "p95_ms", "p50_x_floor", "p95_x_floor",
              "ops_per_s", "x_floor", "events_per_op", "note")
SUGGEST = limits.HISTORY_EVENTS_SUGGEST.value
UNTIL_LIMIT = "changes until the run must continue as new"
CAPS = {"signal": limits.SIGNALS_PER_RUN, "update": limits.UPDATES_PER_RUN}  # the per-run cap of each kind
DECISION_WHY = ("the decision table uses the paced figures: a pause before every call, as between a user's "
                "clicks. Back to back, one caller on the dev server meets its transfer-queue read limit (20 reads "
                "a second on its one shard): every call that needs a new workflow task (a signal's, a start's) is "
                "paced at 50 ms, whatever the pattern costs; an update's task skips that queue "
                "(docs/latency/FINDINGS.md)")


def first_limit(events_per_change: float, kind: str) -> tuple[int, limits.Limit]:
    """How many changes one run of an entity takes before a limit stops it, and which limit that is (C12, C15).

    `kind` is "signal" or "update". Two limits can end what a run accepts: its cap for that kind of message
    (`limits.SIGNALS_PER_RUN`, `limits.UPDATES_PER_RUN`: the server refuses the next one) and the history length
    at which the server terminates the run (`limits.HISTORY_EVENTS_MAX`), reached after
    `HISTORY_EVENTS_MAX / events_per_change` changes (the measured events per change). The smaller wins; at a tie,
    the cap (it refuses the change before the history is full). A run must continue as new before it.
    Workflow-per-request meets neither: each request is a run of a dozen events.
    """
    if kind not in CAPS:
        raise ValueError(f"kind must be one of {sorted(CAPS)}, not {kind!r}")
    cap = CAPS[kind]
    if events_per_change <= 0:
        return cap.value, cap
    by_events = changes_until(events_per_change, limits.HISTORY_EVENTS_MAX.value)
    return (cap.value, cap) if cap.value <= by_events else (by_events, limits.HISTORY_EVENTS_MAX)


def update_cap_binds_first(events_per_update: float) -> bool:
    """C15: an update entity's run meets the update cap (`limits.UPDATES_PER_RUN`, 2,000 per run) before the event
    limit that terminates it (`limits.HISTORY_EVENTS_MAX`), at `events_per_update` events per update."""
    return first_limit(events_per_update, "update")[1] is limits.UPDATES_PER_RUN


def changes_until(events_per_change: float, events: int) -> int:
    """How many changes of `events_per_change` events fill a history of `events` events."""
    return int(events / events_per_change + 1e-9) if events_per_change > 0 else 0  # 51,200 / 5.12 is 10,000


def limit_cell(events_per_change: float, kind: str) -> str:
    """The decision table's cell for an entity: the limit that binds first, the other one, and when the server
    first suggests continue-as-new (`limits.HISTORY_EVENTS_SUGGEST`)."""
    changes, limit = first_limit(events_per_change, kind)
    cap = CAPS[kind]
    by_events = changes_until(events_per_change, limits.HISTORY_EVENTS_MAX.value)
    other = (f"the {limits.HISTORY_EVENTS_MAX.value:,}-event limit would take {by_events:,}" if limit is cap
             else f"the {cap.amount()} cap would take {cap.value:,}")
    suggest = changes_until(events_per_change, SUGGEST)
    return (f"{changes:,} ({limit.key}: {limit.effect}); {other}; the server suggests continue-as-new after "
            f"about {suggest:,} ({SUGGEST:,} events)")


def rows(results: Results) -> list[dict[str, Any]]:
    """One dict per figure, the CSV's rows."""
    r = results
    out: list[dict[str, Any]] = []

    def latency_row(section: str, lat: Latency, label: str, note: str = "", rhythm: str = BACK_TO_BACK
                    ) -> dict[str, Any]:
        return {"section": section, "key": lat.key, "interaction": label, "callers": 1,
                "n": len(lat.samples_ms), "p50_ms": round(lat.p50, 3), "p95_ms": round(lat.p95, 3),
                "p50_x_floor": round(r.x_floor(lat.p50, rhythm), 2), "p95_x_floor": round(r.x_floor(lat.p95, rhythm), 2),
                "ops_per_s": "", "x_floor": round(r.x_floor(lat.p50, rhythm), 2),
                "events_per_op": "" if lat.events_per_op is None else round(lat.events_per_op, 2),
                "note": note or lat.note}

    for key, lat in r.latency.items():
        out.append(latency_row("latency", lat, LABELS[key]))
    for key, lat in r.paced.items():
        out.append(latency_row("paced", lat, f"{LABELS[key]} · paced", rhythm=PACED))
    for (rhythm, key), b in r.round_trips.items():
        typical = b.typical
        out.append({"section": "round trip", "key": key, "interaction": f"{LABELS[key]} · {rhythm}", "callers": 1,
                    "n": len(b.parts), "p50_ms": round(typical.total, 3), "p95_ms": "", "p50_x_floor": "",
                    "p95_x_floor": "", "ops_per_s": "", "x_floor": "", "events_per_op": "",
                    "note": "; ".join(f"{stage} {typical.stages[stage]:.1f} ms" for stage in STAGES)
                            + f" (median in a queue {b.queue_ms:.1f} ms)"})
    for (key, callers), tp in r.throughput.items():
        floor = r.throughput.get(("floor", callers))
        x = floor.per_s / tp.per_s if floor and tp.per_s else float("nan")
        note = f"{tp.errors} errors: {tp.first_error}" if tp.errors else ""
        out.append({"section": "throughput", "key": key, "interaction": LABELS[key], "callers": callers,
                    "n": tp.ops, "p50_ms": "", "p95_ms": "", "p50_x_floor": "", "p95_x_floor": "",
                    "ops_per_s": round(tp.per_s, 1), "x_floor": round(x, 2), "events_per_op": "", "note": note})
    out.append({"section": "helpers", "key": "helper_ratio", "interaction": "ActionForm.submit / raw SDK (p50)",
                "callers": 1, "n": len(r.latency["update_helper"].samples_ms), "p50_ms": "", "p95_ms": "",
                "p50_x_floor": "", "p95_x_floor": "", "ops_per_s": "", "x_floor": round(r.helper_ratio, 3),
                "events_per_op": "",
                "note": f"paired median overhead {r.helper_paired_overhead:+.1%}; limit {HELPER_LIMIT - 1:.0%}"})
    if hasattr(r.kernel_clicks, "overhead"):
        k = r.kernel_clicks
        out.append({"section": "helpers", "key": "kernel_click", "interaction": "a click in a Jupyter kernel / raw SDK",
                    "callers": 1, "n": len(k.raw_ms), "p50_ms": round(k.overhead_ms, 3), "p95_ms": "",
                    "p50_x_floor": "", "p95_x_floor": "", "ops_per_s": "", "x_floor": round(1 + k.overhead, 3),
                    "events_per_op": "", "note": f"paired median overhead {k.overhead:+.1%}; limit "
                                                 f"{HELPER_LIMIT - 1:.0%}; {k.messages_per_click:.1f} widget messages "
                                                 "per click"})
    if r.replay_ms_per_1000:
        out.append({"section": "replay", "key": "replay", "interaction": "replay, ms per 1,000 events",
                    "callers": 1, "n": len(r.replay_ms_per_1000), "p50_ms": round(r.replay_p50, 2),
                    "p95_ms": round(r.replay_p95, 2), "p50_x_floor": round(r.x_floor(r.replay_p50), 2),
                    "p95_x_floor": round(r.x_floor(r.replay_p95), 2), "ops_per_s": "",
                    "x_floor": round(r.x_floor(r.replay_p50), 2), "events_per_op": "",
                    "note": f"histories of {min(r.replay_per_1000_events)}-{max(r.replay_per_1000_events)} "
                            f"events, each replayed twice, start-up included; the shortest "
                            f"({min(r.replay_events)} events) took {min(r.replay_ms):.0f} ms"})
    for key, lat in r.overloaded.items():
        out.append(latency_row("overloaded", lat, f"{LABELS[key]} · overloaded worker",
                               f"{r.overload_ratio(key):.1f}x the normal worker's p50"))
    return out


def frame(results: Results) -> pd.DataFrame:
    """The CSV's rows as a DataFrame."""
    return pd.DataFrame(rows(results), columns=list(CSV_FIELDS))


def write_csv(results: Results, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows(results))
    return path


def as_text(results: Results) -> str:
    """The results as text: latency, throughput, helpers, replay, overload (what the command prints)."""
    r = results
    lines = [f"Temporal interactions, measured side by side ({r.target or 'server'}; N={r.settings.n}, "
             f"warm-up {r.settings.warmup})", ""]
    lines.append(f"{'latency, one caller':<52}{'p50 ms':>9}{'p95 ms':>9}{'p50 x floor':>13}{'p95 x floor':>13}"
                 f"{'events/op':>11}")
    for key, lat in r.latency.items():
        events = "" if lat.events_per_op is None else f"{lat.events_per_op:.1f}"
        lines.append(f"{LABELS[key]:<52}{lat.p50:>9.2f}{lat.p95:>9.2f}{r.x_floor(lat.p50):>13.1f}"
                     f"{r.x_floor(lat.p95):>13.1f}{events:>11}")
    for key in ("signal_query", "per_request", "update_with_start"):
        if key in r.latency and r.latency[key].note:
            lines.append(f"  {key}: {r.latency[key].note}")
    lines.append("")
    if r.paced:
        lines.extend(pacing_text(r))
        lines.append("")
    if r.round_trips:
        lines.extend(round_trip_text(r))
        lines.append("")
    callers = r.settings.concurrency
    head = "".join(f"{f'{c} caller' + ('s' if c > 1 else ''):>13}" for c in callers)
    lines.append(f"{'throughput, operations per second':<52}{head}{f'x floor @{callers[-1]}':>14}")
    for key in THROUGHPUT_KEYS:
        cells = "".join(f"{r.throughput[(key, c)].per_s:>13.1f}" for c in callers)
        last = r.throughput[(key, callers[-1])]
        floor = r.throughput[("floor", callers[-1])]
        x = floor.per_s / last.per_s if last.per_s else float("nan")
        errors = sum(r.throughput[(key, c)].errors for c in callers)
        lines.append(f"{LABELS[key]:<52}{cells}{x:>14.1f}" + (f"  ({errors} errors)" if errors else ""))
    lines.append("")
    # the verdict uses the paired median: each pair ran at the same moment, so the machine's drift cancels out
    verdict = ("under" if r.helper_within_budget else "OVER") + f" the {HELPER_LIMIT - 1:.0%} budget"
    lines.append(f"helpers: update via ActionForm.submit p50 {r.latency['update_helper'].p50:.2f} ms, raw SDK "
                 f"{r.latency['update_raw'].p50:.2f} ms (ratio of p50s {r.helper_ratio:.3f}); the helpers add "
                 f"{r.helper_paired_overhead_ms:+.2f} ms = {r.helper_paired_overhead:+.1%} (median of "
                 f"{len(r.latency['update_raw'].samples_ms)} interleaved pairs): {verdict}"
                 + (f"; their own time outside the update {percentile(r.latency['update_helper'].own_ms, 50):.2f} ms "
                    "(p50)" if r.latency["update_helper"].own_ms else ""))
    if r.kernel_clicks is not None:
        clicked = r.kernel_clicks
        lines.append(clicked.line() if hasattr(clicked, "line") else f"a click in a Jupyter kernel: {clicked}")
    if r.replay_ms_per_1000:
        lines.append(f"replay: p50 {r.replay_p50:.1f} ms per 1,000 events (p95 {r.replay_p95:.1f}), "
                     f"{len(r.replay_ms_per_1000)} replays of histories of {min(r.replay_per_1000_events)}-"
                     f"{max(r.replay_per_1000_events)} events; the shortest history ({min(r.replay_events)} events) "
                     f"took {min(r.replay_ms):.0f} ms")
    for key, lat in r.overloaded.items():
        lines.append(f"overloaded worker: {LABELS[key]} p50 {lat.p50:.1f} ms, p95 {lat.p95:.1f} ms: "
                     f"{r.overload_ratio(key):.1f}x the normal worker ({lat.note})")
    return "\n".join(lines)


def pacing_text(results: Results) -> list[str]:
    """Each interaction back to back and paced, p50 and p95, and which the decision table uses and why."""
    r = results
    low, high = r.settings.pause_ms
    lines = [f"{'latency, one caller: back to back vs paced':<52}{'b2b p50':>9}{'b2b p95':>9}{'paced p50':>11}"
             f"{'paced p95':>11}{'b2b/paced':>11}"]
    for key, paced in r.paced.items():
        lat = r.latency[key]
        lines.append(f"{LABELS[key]:<52}{lat.p50:>9.2f}{lat.p95:>9.2f}{paced.p50:>11.2f}{paced.p95:>11.2f}"
                     f"{r.pace_ratio(key):>11.2f}")
    lines.append(f"  paced: {r.settings.paced_n} calls each, each after a pause of {low:g}-{high:g} ms at random, "
                 f"the interactions in shuffled turns; {DECISION_WHY}")
    if r.settled:
        spent = ", ".join(f"{key} {calls}" for key, calls in r.settled.items() if calls)
        lines.append(f"  back to back: {r.settings.warmup} untimed calls first, and before the rows that need a "
                     f"transfer-queue read, as many as spend the read limit's saved-up reads ({spent})")
    return lines


def round_trip_text(results: Results) -> list[str]:
    """Where one round trip's time went, per interaction and rhythm (the typical one; `tutorial.round_trips`)."""
    head = "".join(f"{stage:>14}" for stage in ("to server", "in a queue", "in worker", "in server", "back"))
    lines = [f"{'one round trip, ms (history timestamps + client clock)':<58}{head}{'total':>9}"]
    for (rhythm, key), b in results.round_trips.items():
        cells = "".join(f"{b.typical.stages[stage]:>14.1f}" for stage in STAGES)
        lines.append(f"{LABELS[key][:44] + ' · ' + rhythm:<58}{cells}{b.typical.total:>9.1f}")
    return lines


def pacing_table(results: Results) -> pd.DataFrame:
    """Notebook 07: each interaction back to back and paced (p50, p95) and the ratio of their p50s."""
    return pd.DataFrame([{"interaction": LABELS[key], "back to back p50": round(results.latency[key].p50, 1),
                          "back to back p95": round(results.latency[key].p95, 1), "paced p50": round(paced.p50, 1),
                          "paced p95": round(paced.p95, 1), "back to back / paced": round(results.pace_ratio(key), 2)}
                         for key, paced in results.paced.items()])


def round_trip_table(results: Results) -> pd.DataFrame:
    """Notebook 07: the typical round trip of each interaction in each rhythm, split into its stages (ms)."""
    from ..round_trips import as_rows

    frame = pd.DataFrame(as_rows(results.round_trips))
    if frame.empty:
        return frame
    frame.insert(0, "interaction", [LABELS[k] for k in frame.pop("key")])
    return frame


# ------------------------------------------------------------------------------------------ notebook 07's tables


HELPER_KEYS = ("update_raw", "update_helper")  # the helpers' cost: for maintainers (README), not notebook 07


def latency_table(results: Results) -> pd.DataFrame:
    """The latency rows, with the columns notebook 07 shows (not the helpers' paired rows)."""
    latency = frame(results).query("section == 'latency'")
    latency = latency[~latency["key"].isin(HELPER_KEYS)]
    return latency[["interaction", "n", "p50_ms", "p95_ms", "p50_x_floor", "p95_x_floor", "events_per_op", "note"]]


def against_floor(results: Results) -> str:
    """One line per interaction: its p50, and how many floors that is (not the helpers' paired rows)."""
    return "\n".join(f"{LABELS[key]:<48} p50 {lat.p50:8.2f} ms = {results.x_floor(lat.p50):6.1f} floors"
                     for key, lat in results.latency.items() if key not in HELPER_KEYS)


def events_table(results: Results) -> pd.DataFrame:
    """History events each interaction adds."""
    return pd.DataFrame([{"interaction": LABELS[k], "history events": v}
                         for k, v in results.events_per_op().items()])


def replay_table(results: Results) -> pd.DataFrame:
    """Replay time by history length, shortest first (the faster of each history's two replays)."""
    replays = pd.DataFrame({"events": results.replay_events, "replay ms": results.replay_ms})
    return replays.groupby("events", as_index=False)["replay ms"].min().round(1)


def throughput_table(results: Results) -> pd.DataFrame:
    """Operations per second, one row per interaction, one column per number of callers."""
    callers = results.settings.concurrency
    return pd.DataFrame([{"interaction": LABELS[k],
                          **{f"{c} callers": round(results.throughput[(k, c)].per_s) for c in callers}}
                         for k in THROUGHPUT_KEYS])


# ------------------------------------------------------------------------------------------ choosing a pattern

PATTERNS = {
    "workflow-per-request + database": {
        "advantages": "short workflows, so changing workflow code is easy (C6); never meets the history "
                            "limit (C7)",
        "disadvantages": "the entity's status lives in a separate database: send the request, update the "
                               "db, reply (C8)",
        "use it when": "requests are independent and the state belongs in a database other systems read; "
                       "you change the workflow code often; each request may cost a whole workflow",
    },
    "entity: signal + query": {
        "advantages": "timers, cancellation; runs for ever; the workflow is the source of truth (C10)",
        "disadvantages": "asynchronous: a query right after a signal may not see it, so ask again (C11); "
                               "needs continue-as-new (C12); worker load delays it (C13)",
        "use it when": "callers fire and forget (the cheapest write to accept) and readers can wait a moment; "
                       "the entity needs timers or cancellation",
    },
    "entity: update (+ update-with-start)": {
        "advantages": "synchronous: changes state and returns the result (C14); timers, runs for ever, "
                            "source of truth",
        "disadvantages": "needs continue-as-new (C15); worker load delays it (C13)",
        "use it when": "the caller needs the result or a rejection now (validators keep bad requests out of "
                       "the history); update-with-start creates the entity on first use",
    },
    "long-lived entity + continue-as-new": {
        "advantages": "keeps the history, and the replay after every eviction, short for an entity that "
                            "lives for ever",
        "disadvantages": "must handle pending signals and updates before continuing as new (C12, C15)",
        "use it when": "always, for an entity of either kind that lives long: continue when the server "
                       "suggests it, well before a cap or the event limit",
    },
}


def decision_table(results: Results) -> pd.DataFrame:
    """Each pattern's advantages and disadvantages (the lessons' prose) beside this run's figures."""
    r = results
    lat = r.latency
    top = r.settings.concurrency[-1]

    rhythm = r.chosen_rhythm  # paced (see DECISION_WHY), or back to back if the run measured no paced rows

    def ms(key: str) -> str:
        p50 = r.chosen(key).p50
        return f"{p50:.1f} ms ({r.x_floor(p50, rhythm):.0f}x floor)"

    def per_s(key: str) -> str:
        return f"{r.throughput[(key, top)].per_s:.0f}/s" if (key, top) in r.throughput else "not measured"

    def replay_at(events: float) -> str:
        return f"{r.replay_ms_at(events):,.0f} ms" if r.replay_ms_per_1000 else "not measured"

    def overload(key: str) -> str:
        return f"{r.overload_ratio(key):.1f}x slower" if key in r.overloaded else "not measured"

    per_request_events = lat["per_request"].events_per_op or 0
    signal_events = lat["signal_query"].events_per_op or 0
    update_events = lat["update"].events_per_op or 0
    measured = {
        "workflow-per-request + database": {
            f"a change (p50, {rhythm})": ms("per_request"),
            f"a read (p50, {rhythm})": "a database read (not a Temporal call)",
            f"changes/s, {top} callers": per_s("per_request"),
            "history events per change": f"{per_request_events:.0f} in a new workflow each time",
            UNTIL_LIMIT: "never: every request is a run of its own, far below every limit",
            "replay after an eviction": replay_at(per_request_events) + " (one short history)",
            "on an overloaded worker": "not measured here (two workflow tasks and an activity per request)",
        },
        "entity: signal + query": {
            f"a change (p50, {rhythm})": f"accepted {ms('signal')}; visible {ms('signal_query')}",
            f"a read (p50, {rhythm})": ms("query"),
            f"changes/s, {top} callers": f"accepted {per_s('signal')}; visible {per_s('signal_query')}",
            "history events per change": f"{signal_events:.1f}",
            UNTIL_LIMIT: limit_cell(signal_events, "signal"),
            "replay after an eviction": f"{replay_at(first_limit(signal_events, 'signal')[0] * signal_events)} "
                                        f"at that limit",
            "on an overloaded worker": overload("signal_query"),
        },
        "entity: update (+ update-with-start)": {
            f"a change (p50, {rhythm})": f"{ms('update')}; with start {ms('update_with_start')}",
            f"a read (p50, {rhythm})": ms("query"),
            f"changes/s, {top} callers": per_s("update"),
            "history events per change": f"{update_events:.1f}",
            UNTIL_LIMIT: limit_cell(update_events, "update"),
            "replay after an eviction": f"{replay_at(first_limit(update_events, 'update')[0] * update_events)} "
                                        f"at that limit",
            "on an overloaded worker": overload("update"),
        },
        "long-lived entity + continue-as-new": {
            f"a change (p50, {rhythm})": "as the entity it wraps",
            f"a read (p50, {rhythm})": ms("query"),
            f"changes/s, {top} callers": "as the entity it wraps",
            "history events per change": "as the entity; reset to a handful at each new run",
            UNTIL_LIMIT: "never: it continues as new when the server suggests it, before any limit",
            "replay after an eviction": f"at most {replay_at(SUGGEST)} (continuing at the server's "
                                        f"{SUGGEST:,}-event hint)",
            "on an overloaded worker": "as the entity it wraps",
        },
    }
    return pd.DataFrame([{"pattern": name, **measured[name], **PATTERNS[name]} for name in PATTERNS])
