"""Workflow code: everything the worker's sandbox imports, and nothing else.

The sandbox re-imports a workflow's module, and everything it imports, for every workflow run it builds, and
forbids non-deterministic calls there. So this folder holds only workflow definitions, the activities they
call, the data classes that travel between them, and the account rules they share (`domain`). Modules here may
import the standard library, `temporalio` and each other; never pandas, ipywidgets, matplotlib, subprocess or
the notebook helpers one folder up (`tests/test_workflows_boundary.py` checks it by import).

Notebook helpers (clients, consoles, boards, charts) live in `tutorial.*` and import from here, never the
other way round.
"""
