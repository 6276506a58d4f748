"""The one table style of the workbook: every table a notebook shows goes through `tidy` or `table`."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
from IPython.display import HTML, display


RUN_ID_CHARS = 8  # a run id is 36 characters; its first 8 tell runs apart in a table


def _short_run_id(value: Any) -> Any:
    return f"{value[:RUN_ID_CHARS]}…" if isinstance(value, str) and len(value) > RUN_ID_CHARS + 1 else value


def tidy(data: "pd.DataFrame | list[dict] | dict", columns: list[str] | None = None):
    """The one table style: no index, text left-aligned, two decimals, empty cells for missing values (no
    `nan`), run ids cut to their first characters. Returns a Styler for `display`."""
    frame = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame([data] if isinstance(data, dict) else data)
    if columns:
        frame = frame[columns]
    for column in frame.columns:
        if "run" in str(column).lower() and "id" in str(column).lower():
            frame[column] = frame[column].map(_short_run_id)
    return (frame.style.hide(axis="index").format(precision=2, na_rep="")
            .set_properties(**{"text-align": "left"})
            .set_table_styles([{"selector": "th", "props": [("text-align", "left")]}]))


def table(data: "pd.DataFrame | list[dict] | dict", title: str = "", columns: list[str] | None = None) -> None:
    """Show a small table (a frame, a list of dicts, or one dict) in the house style, with an optional bold title."""
    if title:
        display(HTML(f"<b>{html.escape(title)}</b>"))
    display(tidy(data, columns))
