"""Every notebook, run top to bottom and then again in the same kernel, as a learner re-runs it, then every
widget clicked, as a learner plays after Run All.

The first pass is what nbval proves (the quick command runs nbval); the second proves that every cell
survives being run again; the clicks (listed in the notebook's metadata, `workbook.clicks`) prove that the
widgets still give results after the clean-up cell ran. Part of the full suite only.
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


def test_a_click_that_fails_after_run_all_is_caught(tmp_path):
    """The counterfactual of the clicks: a widget whose action needs what the last cell put away."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from tutorial import widgets\nstate = {'open': True}\n"
        "async def act():\n    if not state['open']:\n        raise ValueError('closed by the clean-up')\n"
        "    return 'a result'\nbutton = widgets.ActionButton('Go', act)"),
        nbformat.v4.new_code_cell("state['open'] = False  # the clean-up")])
    nb.metadata["workbook"] = {"clicks": [{"widget": "button", "label": "Go", "expect": "a result"}]}
    path = tmp_path / "clean_up_breaks_it.ipynb"
    nbformat.write(nb, path)
    failure = _rerun_check().rerun(path)
    assert failure and "clicking 'Go'" in failure and "closed by the clean-up" in failure, failure


def test_every_notebook_with_widgets_lists_what_to_click_after_run_all():
    import nbformat

    missing = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        has_widgets = any(kind in code for kind in ("ActionButton(", "ActionForm(", "Console(", "Playground(",
                                                    "worker_panel("))
        if has_widgets and not _rerun_check().clicks_of(nb):
            missing.append(path.name)
    assert not missing, f"no workbook.clicks in the metadata of {missing}"
