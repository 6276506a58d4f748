"""Notebooks are committed clean and follow the workbook's shape (overview, time, summary, navigation)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ALL = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
NOTEBOOKS = [p for p in ALL if p.name[:2].isdigit()]  # the lessons; _setup_check (a tool) sorts first


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; clear them before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opens_with_objectives_and_time_and_ends_with_summary_and_next(path):
    nb = json.loads(path.read_text())
    first = "".join(nb["cells"][0]["source"])
    last = "".join(nb["cells"][-1]["source"])
    assert "Time:" in first and "Prerequisites" in first, "first cell: objectives, prerequisites, time"
    assert "Summary" in last, "last cell: a summary"
    assert "Next" in last or "next" in last, "last cell: what comes next"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_proves_its_claims_with_asserts(path):
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert code.count("assert ") >= 3
    assert "asyncio.run(" not in code, "a kernel already runs a loop: use top-level await"


def _navigation():
    import importlib.util

    spec = importlib.util.spec_from_file_location("navigation", Path(__file__).parent.parent / "scripts" / "navigation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def test_navigation_is_generated_from_the_titles():
    nav = _navigation()
    assert [e.path for e in nav.entries()] == NOTEBOOKS
    assert nav.drifted() == [], "run scripts/navigation.py"


def test_the_navigation_check_sees_a_drifted_notebook(tmp_path):
    import shutil

    import nbformat

    nav = _navigation()
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / path.name)
    victim = tmp_path / NOTEBOOKS[1].name
    nb = nbformat.read(victim, as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("**Contents** ·", "**Contents** · [99 · typed by hand](x.ipynb) ·")
    nbformat.write(nb, victim)
    assert nav.drifted(tmp_path) == [victim.name]
    nav.drifted(tmp_path, write=True)
    assert nav.drifted(tmp_path) == []
