"""Run a notebook top to bottom in a fresh kernel, then every cell again in the same kernel.

Learners re-run cells; this proves they can. Prints the time of each pass and the first failing cell.
    .venv/bin/python scripts/rerun_check.py notebooks/00_how_temporal_runs_your_code.ipynb
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main(path: str) -> int:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(path).parent)}})
    with client.setup_kernel():
        for run in (1, 2):
            started = time.perf_counter()
            for index, cell in enumerate(nb.cells):
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as err:
                    print(f"pass {run}: cell {index} failed:\n{str(err)[-3000:]}")
                    return 1
            print(f"pass {run}: all {len(nb.cells)} cells ran in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
