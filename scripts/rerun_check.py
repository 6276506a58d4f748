"""Run a notebook top to bottom in a fresh kernel, then every cell again in the same kernel.

Learners re-run cells; this proves they can. Prints the time of each pass and the first failing cell.
    .venv/bin/python scripts/rerun_check.py notebooks/00_how_temporal_runs_your_code.ipynb
With --twice-each, one pass runs every code cell twice in a row instead (a learner pressing Shift+Enter twice).
The full test suite runs every notebook this way (tests/test_notebooks_rerun.py).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


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
    return None


def main(path: str, twice_each: bool = False) -> int:
    failure = rerun(path, twice_each=twice_each)
    if failure:
        print(failure)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], twice_each="--twice-each" in sys.argv[2:]))
