"""Every notebook, run top to bottom and then again in the same kernel, as a learner re-runs it.

The first pass is what nbval proves (the quick command runs nbval); the second proves that every cell
survives being run again. Part of the full suite only.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.full


def _rerun_check():
    spec = importlib.util.spec_from_file_location("rerun_check", ROOT / "scripts" / "rerun_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runs_twice_in_one_kernel(path):
    failure = _rerun_check().rerun(path)
    assert failure is None, failure


def test_a_cell_that_fails_on_the_second_pass_is_caught(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import builtins\nassert not hasattr(builtins, '_ran_once'), 'this cell cannot run twice'\n"
        "builtins._ran_once = True")])
    path = tmp_path / "once.ipynb"
    nbformat.write(nb, path)
    failure = _rerun_check().rerun(path)
    assert failure and failure.startswith("pass 2: cell 0") and "cannot run twice" in failure
