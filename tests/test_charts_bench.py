"""The benchmark's chart, on a real (tiny) run: three panels (latency, throughput, history events), and the PNG
the command writes."""

from __future__ import annotations

import os

import pytest

from tutorial import bench
from tutorial.charts import bench as bench_charts
from tutorial.charts import plt


@pytest.fixture(scope="module")
def results(run, client):
    settings = bench.Settings(n=1, warmup=0, concurrency=(1, 2), duration=0.1, overload_reps=1,
                              overload_entities=2, paced_n=2, settle=3, pause_ms=(5, 20))
    with open(os.devnull, "w") as quiet:
        return run(bench.run(client, settings, progress=bench.TerminalProgress(1, stream=quiet), target="chart"))


def test_three_panels_with_every_row(results):
    fig = bench_charts.chart(results)
    latency, throughput, events = fig.axes
    labels = [t.get_text() for t in latency.get_yticklabels()]
    assert labels == [bench_charts.SHORT[k] for k in results.latency] + \
        [f"{bench_charts.SHORT[k]}, OVERLOADED" for k in results.overloaded]
    assert len(throughput.get_lines()) == len(bench.THROUGHPUT_KEYS)
    assert [t.get_text() for t in events.get_xticklabels()] == \
        [bench_charts.EVENT_LABELS[k] for k in results.events_per_op()]
    assert "replay:" in events.get_title() and results.machine in fig._suptitle.get_text()
    plt.close(fig)


def test_write_png(results, tmp_path):
    path = bench_charts.write_png(results, tmp_path / "out" / "results.png")
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_the_notebook_layout_fits_a_notebook_and_leaves_out_the_helpers(results):
    fig = bench_charts.chart(results, helpers=False, notebook=True)
    latency, throughput, events = fig.axes
    labels = [t.get_text() for t in latency.get_yticklabels()]
    assert labels == [bench_charts.SHORT[k] for k in results.latency if k not in bench_charts.HELPER_KEYS] + \
        [f"{bench_charts.SHORT[k]}, OVERLOADED" for k in results.overloaded]
    assert fig.get_figwidth() <= 10  # shown at about its own size in a notebook, not shrunk to half
    sizes = [t.get_fontsize() for ax in fig.axes for t in (*ax.get_yticklabels(), *ax.get_xticklabels(), *ax.texts)]
    assert min(sizes) >= 9, sorted(set(sizes))
    plt.close(fig)
