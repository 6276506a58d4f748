"""The one table style: no index, no `nan`, short run ids, the columns asked for."""

from __future__ import annotations

import pandas as pd

from tutorial import tables


def test_a_table_has_no_index_no_nan_and_short_run_ids():
    frame = pd.DataFrame([{"id": 1, "run id": "0123456789abcdef-0123", "missing": float("nan"), "ms": 1.23456},
                          {"id": 2, "run id": "fedcba9876543210-3210", "missing": 3.0, "ms": 2.0}])
    markup = tables.tidy(frame).to_html()
    assert "nan" not in markup and "01234567…" in markup and "0123456789abcdef" not in markup
    assert "1.23" in markup and "1.23456" not in markup
    assert 'class="row_heading' not in markup, "no pandas index beside the id column"


def test_only_the_columns_asked_for_and_rows_from_dicts():
    markup = tables.tidy([{"a": 1, "b": 2}], columns=["b"]).to_html()
    assert ">b<" in markup and ">a<" not in markup
