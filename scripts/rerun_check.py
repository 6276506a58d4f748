"""Run a notebook top to bottom in a fresh kernel, then every cell again in the same kernel, then click its widgets.

Learners re-run cells, and after Run All they play with the widgets; this proves both. Prints the time of each
pass, each click's answer, and the first failure.
    .venv/bin/python scripts/rerun_check.py notebooks/00_how_temporal_runs_your_code.ipynb
With --twice-each, one pass runs every code cell twice in a row instead (a learner pressing Shift+Enter twice).
The clicks are listed in the notebook's own metadata, `workbook.clicks`: [{"widget": "form", "label": "Send
request", "expect": "reply"}], in the order a learner would click (the browser test clicks the same list by
label). The full test suite runs every notebook this way (tests/test_notebooks_rerun.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

FAILED_MARKS = ("✖", "⚠")  # as tutorial.widgets.FAILED_MARKS: an answer with one of these is not a result


def clicks_of(nb) -> list[dict]:
    """The widgets a learner clicks after Run All, from the notebook's metadata."""
    return list(nb.metadata.get("workbook", {}).get("clicks", []))


def click_cell(widget: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(
        "from tutorial.widgets import click_and_read as __click\n"
        f"print(await __click({widget}))")


def click_all(client: NotebookClient, clicks: list[dict], log=print) -> str | None:
    """Click each widget in the kernel the notebook ran in; None if every answer was a result."""
    for click in clicks:
        cell = click_cell(click["widget"])
        try:
            client.execute_cell(cell, 0)
        except CellExecutionError as err:
            return f"clicking {click['widget']} raised:\n{str(err)[-2000:]}"
        answer = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream").strip()
        log(f"  after Run All, {click['label']!r} answered: {answer[:300]}")
        if click["expect"] not in answer or any(mark in answer for mark in FAILED_MARKS):
            return f"after Run All, clicking {click['label']!r} ({click['widget']}) answered {answer[:500]!r}, " \
                   f"not a result with {click['expect']!r}"
    return None


def rerun(path: str | Path, *, twice_each: bool = False, log=print) -> str | None:
    """Run the notebook twice in one kernel (or each cell twice); None if every cell passed, else what failed."""
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent)}})
    with client.setup_kernel():
        for run in ((1,) if twice_each else (1, 2)):
            started = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                for attempt in ((1, 2) if twice_each and cell.cell_type == "code" else (1,)):
                    try:
                        client.execute_cell(cell, index)
                    except CellExecutionError as err:
                        return f"pass {run}: cell {index} (run {attempt}) failed:\n{str(err)[-3000:]}"
            what = "every cell twice in a row" if twice_each else f"all {len(nb.cells)} cells"
            log(f"{Path(path).name} pass {run}: {what} ran in {time.perf_counter() - started:.1f} s")
        return click_all(client, clicks_of(nb), log=log)


def main(path: str, twice_each: bool = False) -> int:
    failure = rerun(path, twice_each=twice_each)
    if failure:
        print(failure)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], twice_each="--twice-each" in sys.argv[2:]))
