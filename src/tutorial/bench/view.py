"""Notebook 07's Measure button draws here: the measurement's tables and chart as outputs of the Output area
under the form, so a click redraws them where the button is (not in cells far below).

`outputs(results)` returns plain display_data dicts (HTML tables in the workbook's one style, the chart as a
PNG) for `widgets.Output.outputs`: set from the click's task, with no display formatters and nothing routed
through whichever cell happens to run. Imported as `tutorial.bench.view` (it draws, so `tutorial.bench` does
not import it).
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from ..charts import bench as bench_charts
from ..charts import plt
from ..charts import round_trips as round_trip_charts
from ..tables import tidy
from .model import LABELS, Results
from .report import decision_table, events_table, latency_table, pacing_table, throughput_table


def _html(markup: str, text: str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": markup, "text/plain": text}}


def table_output(frame, title: str) -> dict[str, Any]:
    """A titled table in the house style, as one display_data output."""
    return _html(f"<b>{html.escape(title)}</b>{tidy(frame).to_html()}", title)


def _png(fig, text: str) -> dict[str, Any]:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": text}}


def chart_output(results: Results) -> dict[str, Any]:
    """The chart laid out for a notebook (no helpers' rows), as a PNG display_data output."""
    return _png(bench_charts.chart(results, helpers=False, notebook=True),
                "the benchmark's chart: latency, throughput, history events")


def round_trip_figure(results: Results):
    """The stacked bars of `tutorial.charts.round_trips` for this run's round trips."""
    return round_trip_charts.chart(results.round_trips, LABELS)


def round_trip_output(results: Results) -> dict[str, Any]:
    """Where one round trip's time goes, per interaction and rhythm, as a PNG display_data output."""
    return _png(round_trip_figure(results), "where one round trip's time goes, per interaction and rhythm")


def decision_styled(results: Results):
    """The decision table, one column per pattern, in the house style with its long text wrapped."""
    frame = decision_table(results).set_index("pattern").T.rename_axis("").reset_index()
    return tidy(frame).set_properties(**{"white-space": "normal", "vertical-align": "top"})


def outputs(results: Results) -> tuple[dict[str, Any], ...]:
    """What the Measure click shows under its form: latency (back to back, then beside paced), chart, where a
    round trip's time goes, history events, throughput."""
    low, high = results.settings.pause_ms
    return (table_output(latency_table(results), f"Latency, one caller, back to back (N={results.settings.n})"),
            table_output(pacing_table(results), f"Back to back, and paced: a pause of {low:g}-{high:g} ms at "
                                                f"random before each call (N={results.settings.paced_n})"),
            chart_output(results),
            round_trip_output(results),
            table_output(events_table(results), "History events each interaction adds"),
            table_output(throughput_table(results), "Operations per second, by number of callers"))
