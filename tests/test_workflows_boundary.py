"""The sandbox boundary: `tutorial.workflows` imports only the standard library, temporalio and itself.

Checked twice: statically (every import statement in the folder) and by import (a fresh interpreter imports
every workflow module and we look at what it loaded). Each check is also run on a module that breaks the rule,
to show it would fail.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import tutorial.workflows

FOLDER = Path(tutorial.workflows.__file__).parent
FORBIDDEN = ("pandas", "ipywidgets", "matplotlib", "IPython", "subprocess", "numpy", "nest_asyncio")
ALLOWED_ROOTS = {"temporalio"} | set(sys.stdlib_module_names)


def bad_imports(source: str) -> list[str]:
    """Imports in `source` (a module inside tutorial/workflows/) that cross the boundary."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:  # `from .x import y`: inside the folder, always fine
                continue
            if node.level > 1:  # `from ..server import ...`: a notebook helper
                bad.append("." * node.level + (node.module or ""))
                continue
            names = [node.module or ""]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            if name.startswith("tutorial.workflows") or (root in ALLOWED_ROOTS and root not in FORBIDDEN):
                continue
            bad.append(name)
    return bad


def workflow_modules() -> list[str]:
    return [f"tutorial.workflows.{m.name}" for m in pkgutil.iter_modules([str(FOLDER)])]


def loaded_by(modules: list[str]) -> list[str]:
    """Modules a fresh interpreter holds after importing `modules`, minus what temporalio loads by itself."""
    code = (
        "import json, sys\n"
        "import temporalio.client, temporalio.worker, temporalio.workflow, temporalio.activity\n"
        "before = set(sys.modules)\n"
        f"for name in {modules!r}: __import__(name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout)


def crossings(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m.split(".")[0] in FORBIDDEN
            or (m.startswith("tutorial.") and not m.startswith("tutorial.workflows"))]


def test_every_import_in_the_folder_stays_inside_the_boundary():
    found = {path.name: bad_imports(path.read_text()) for path in sorted(FOLDER.glob("*.py"))}
    assert len(found) >= 3, found
    assert {name: bad for name, bad in found.items() if bad} == {}


def test_the_static_check_catches_a_crossing():
    assert bad_imports("import pandas as pd") == ["pandas"]
    assert bad_imports("from ..widgets import ActionButton") == ["..widgets"]
    assert bad_imports("from tutorial.server import connect") == ["tutorial.server"]
    assert bad_imports("import subprocess") == ["subprocess"]
    assert bad_imports("from .domain import Account\nimport asyncio\nfrom temporalio import workflow") == []


def test_importing_every_workflow_module_loads_no_notebook_helper():
    modules = workflow_modules()
    assert "tutorial.workflows.domain" in modules
    loaded = loaded_by(modules)
    assert "tutorial.workflows.domain" in loaded
    assert crossings(loaded) == []


def test_the_import_check_catches_a_crossing():
    assert crossings(loaded_by(["tutorial.workflows.domain", "tutorial.widgets"]))  # widgets pulls ipywidgets
