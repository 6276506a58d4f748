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
from ..tables import tidy
from .model import Results
from .report import decision_table, events_table, latency_table, throughput_table


def _html(markup: str, text: str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": markup, "text/plain": text}}


def table_output(frame, title: str) -> dict[str, Any]:
    """A titled table in the house style, as one display_data output."""
    return _html(f"<b>{html.escape(title)}</b>{tidy(frame).to_html()}", title)


def chart_output(results: Results) -> dict[str, Any]:
    """The chart laid out for a notebook (no helpers' rows), as a PNG display_data output."""
    fig = bench_charts.chart(results, helpers=False, notebook=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"),
                     "text/plain": "the benchmark's chart: latency, throughput, history events"}}


def decision_styled(results: Results):
    """The decision table, one column per pattern, in the house style with its long text wrapped."""
    frame = decision_table(results).set_index("pattern").T.rename_axis("").reset_index()
    return tidy(frame).set_properties(**{"white-space": "normal", "vertical-align": "top"})


def outputs(results: Results) -> tuple[dict[str, Any], ...]:
    """What the Measure click shows under its form: latency, chart, history events, throughput."""
    return (table_output(latency_table(results), f"Latency, one caller at a time (N={results.settings.n})"),
            chart_output(results),
            table_output(events_table(results), "History events each interaction adds"),
            table_output(throughput_table(results), "Operations per second, by number of callers"))
