"""The SDK's own metrics, drained into plain counters a notebook can show and assert on.

The Temporal core reports what the worker does (sticky cache hits, cache size, forced evictions, replays)
as metrics. We give the process one `Runtime` whose metrics go to an in-memory `MetricBuffer`, and drain it
often: an undrained buffer fills up and the core then logs "metrics buffer is full" by the hundred.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from . import logfiles

CACHE_HIT = "temporal_sticky_cache_hit"
CACHE_MISS = "temporal_sticky_cache_miss"
CACHE_SIZE = "temporal_sticky_cache_size"
FORCED_EVICTION = "temporal_sticky_cache_total_forced_eviction"
REPLAY_LATENCY = "temporal_workflow_task_replay_latency"
WORKFLOW_TASK_LATENCY = "temporal_workflow_task_execution_latency"

_BUFFER_SIZE = 200_000
_lock = threading.Lock()
_runtime: Runtime | None = None
_buffer: MetricBuffer | None = None


@dataclass
class _Series:
    """Everything seen for one metric name and one task queue (or worker-wide: task queue "")."""

    total: float = 0.0  # counters: sum of deltas; histograms: sum of values
    count: int = 0  # histograms: number of observations
    last: float = 0.0  # gauges: last value
    values: list[float] = field(default_factory=list)  # histograms: every observation


_series: dict[tuple[str, str], _Series] = defaultdict(_Series)


def runtime() -> Runtime:
    """The one Runtime of this process, with metrics going to our buffer (drained every second)."""
    global _runtime, _buffer
    with _lock:
        if _runtime is None:
            _buffer = MetricBuffer(_BUFFER_SIZE, duration_format=MetricBufferDurationFormat.SECONDS)
            _runtime = Runtime(telemetry=TelemetryConfig(metrics=_buffer, logging=logfiles.core_logging()))
            threading.Thread(target=_drain_forever, name="temporal-metrics-drain", daemon=True).start()
        return _runtime


def _drain_forever(every_s: float = 1.0) -> None:
    """Keep the buffer from filling while nobody reads the counters (a long burst, an idle notebook)."""
    while True:
        time.sleep(every_s)
        try:
            drain()
        except Exception:  # never let a metrics hiccup kill the thread
            pass


def drain() -> int:
    """Move pending metric updates into the counters; returns how many there were."""
    if _buffer is None:
        return 0
    with _lock:
        updates = _buffer.retrieve_updates()
        for update in updates:
            metric = update.metric
            queue = str(update.attributes.get("task_queue", ""))
            series = _series[(metric.name, queue)]
            if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
                series.total += update.value
            elif metric.kind == BUFFERED_METRIC_KIND_GAUGE:
                series.last = update.value
            else:
                series.total += update.value
                series.count += 1
                series.values.append(float(update.value))
        return len(updates)


def _matching(name: str, task_queue: str | None) -> list[_Series]:
    return [s for (n, q), s in _series.items() if n == name and (task_queue is None or q in (task_queue, ""))]


def total(name: str, task_queue: str | None = None) -> float:
    """Sum of a counter (or of a histogram's values) since the kernel started."""
    drain()
    return sum(s.total for s in _matching(name, task_queue))


def count(name: str, task_queue: str | None = None) -> int:
    """Number of observations of a histogram (for example: how many workflow tasks were replays)."""
    drain()
    return sum(s.count for s in _matching(name, task_queue))


def gauge(name: str, task_queue: str | None = None) -> float:
    """Last value of a gauge (for example: workflows in the sticky cache)."""
    drain()
    found = _matching(name, task_queue)
    return max((s.last for s in found), default=0.0)


def values(name: str, task_queue: str | None = None) -> list[float]:
    """Every observation of a histogram, in seconds for durations."""
    drain()
    return [v for s in _matching(name, task_queue) for v in s.values]


@dataclass(frozen=True)
class CacheCounters:
    """What the worker's cache did, as a notebook shows it."""

    cache_size: int
    cache_hits: int
    cache_misses: int
    forced_evictions: int
    replays: int  # workflow objects rebuilt from history (counted by the worker's interceptor)

    def minus(self, before: "CacheCounters") -> "CacheCounters":
        """The change since `before` (the size stays absolute: it is a gauge)."""
        return CacheCounters(
            cache_size=self.cache_size,
            cache_hits=self.cache_hits - before.cache_hits,
            cache_misses=self.cache_misses - before.cache_misses,
            forced_evictions=self.forced_evictions - before.forced_evictions,
            replays=self.replays - before.replays,
        )


def cache_counters(task_queue: str | None = None, replays: int = 0) -> CacheCounters:
    """Snapshot of the cache counters, for one task queue or the whole process."""
    return CacheCounters(
        cache_size=int(gauge(CACHE_SIZE, task_queue)),
        cache_hits=int(total(CACHE_HIT, task_queue)),
        cache_misses=int(total(CACHE_MISS, task_queue)),
        forced_evictions=int(total(FORCED_EVICTION, task_queue)),
        replays=replays,
    )
