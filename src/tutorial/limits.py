"""Temporal's limits per workflow run: one table, used by every notebook that names a limit.

Server defaults, from the server's dynamic config (`common/dynamicconfig/constants.go` in temporalio/temporal);
each can be changed per namespace, and `temporal server start-dev --dynamic-config-value KEY=VALUE` lowers it
for a demo. A *run* is one execution of a workflow id: continue-as-new starts a new run with fresh counts.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class Limit:
    """One limit: how much, of what, what the server does at it, and the dynamic-config key that sets it."""

    what: str
    value: int
    unit: str  # "events", "bytes", "updates", "signals", "queries"
    effect: str
    key: str

    def amount(self) -> str:
        return f"{self.value // MB} MB" if self.unit == "bytes" else f"{self.value:,} {self.unit}"


HISTORY_EVENTS_SUGGEST = Limit("history length", 4_096, "events", "suggests continue-as-new",
                               "limit.historyCount.suggestContinueAsNew")
HISTORY_BYTES_SUGGEST = Limit("history size", 4 * MB, "bytes", "suggests continue-as-new",
                              "limit.historySize.suggestContinueAsNew")
HISTORY_EVENTS_WARN = Limit("history length", 10_240, "events", "logs warnings", "limit.historyCount.warn")
HISTORY_BYTES_WARN = Limit("history size", 10 * MB, "bytes", "logs warnings", "limit.historySize.warn")
HISTORY_EVENTS_MAX = Limit("history length", 51_200, "events", "terminates the run", "limit.historyCount.error")
HISTORY_BYTES_MAX = Limit("history size", 50 * MB, "bytes", "terminates the run", "limit.historySize.error")
UPDATES_IN_FLIGHT = Limit("updates admitted but not completed", 10, "updates", "refuses the next update",
                          "history.maxInFlightUpdates")
UPDATES_PER_RUN = Limit("updates in one run", 2_000, "updates",
                        "refuses the next update (continue-as-new suggested from 90%)", "history.maxTotalUpdates")
UPDATES_SUGGEST = Limit("updates in one run", 1_800, "updates", "suggests continue-as-new (90% of the cap)",
                        "history.maxTotalUpdates.suggestContinueAsNewThreshold")
SIGNALS_PER_RUN = Limit("signals in one run", 10_000, "signals", "refuses the next signal (it never suggests continue-as-new)",
                        "history.maximumSignalsPerExecution")
BUFFERED_QUERIES = Limit("queries held while a workflow task runs", 1, "queries",
                         "refuses another with RESOURCE_EXHAUSTED", "history.MaxBufferedQueryCount")

ALL = (HISTORY_EVENTS_SUGGEST, HISTORY_BYTES_SUGGEST, HISTORY_EVENTS_WARN, HISTORY_BYTES_WARN, HISTORY_EVENTS_MAX,
       HISTORY_BYTES_MAX, UPDATES_IN_FLIGHT, UPDATES_SUGGEST, UPDATES_PER_RUN, SIGNALS_PER_RUN, BUFFERED_QUERIES)


def rows(*extra: dict[str, str]) -> list[dict[str, str]]:
    """The table as rows for `widgets.table` (a notebook may put its own demo threshold first)."""
    return [*extra, *({"limit": f"{lim.what}: {lim.amount()}", "the server": lim.effect, "dynamic config": lim.key}
                      for lim in ALL)]
