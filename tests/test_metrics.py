"""The SDK's metrics reach our counters, and the buffer is drained without anyone asking."""

from __future__ import annotations

import time

from tutorial import metrics
from tutorial.workflows.greeting import Counter
from tutorial.workshop import unique
from tutorial.worker import WorkerController


def test_cache_hits_and_size_come_from_the_sdk(run, client):
    w = WorkerController(client, task_queue=unique("metrics"), workflows=[Counter])
    run(w.start())
    before = w.cache()
    handle = run(client.start_workflow(Counter.run, id=unique("counter"), task_queue=w.task_queue))
    for _ in range(3):
        run(handle.signal(Counter.add, 1))
        run(handle.query(Counter.current))
    after = w.cache()
    assert after.minus(before).cache_hits >= 2
    assert after.cache_size >= 1
    assert metrics.total(metrics.CACHE_HIT, w.task_queue) >= after.cache_hits - before.cache_hits
    run(handle.signal(Counter.finish))
    run(handle.result())
    run(w.stop())


def test_a_background_thread_drains_the_buffer(client):
    metrics.drain()
    time.sleep(2.5)  # the worker-less client still reports request metrics now and then
    assert any(t.name == "temporal-metrics-drain" and t.is_alive() for t in __import__("threading").enumerate())
    assert metrics._buffer is not None and metrics.drain() < metrics._BUFFER_SIZE
