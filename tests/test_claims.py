"""Every claim C1-C17 is proven by an experiment that can fail: it has a counterfactual test, and the README's
claims table names that test, the notebook that runs the experiment and the check function it asserts with.

A counterfactual test (named `test_counterfactual_c<N>_...`) runs the claim's experiment against a variant where
the claim is false and shows that the notebook's check fails there. A claim without one is not proven.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
CLAIMS = [f"C{n}" for n in range(1, 18)]
NAME = re.compile(r"^test_counterfactual_c(\d+)_")


def counterfactual_tests(folder: Path = ROOT / "tests") -> dict[str, list[str]]:
    """Claim -> the counterfactual tests that name it ("file.py::test_name")."""
    found: dict[str, list[str]] = {}
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (match := NAME.match(node.name)):
                found.setdefault(f"C{int(match.group(1))}", []).append(f"{path.name}::{node.name}")
    return found


def readme_claims() -> dict[str, str]:
    """Claim -> its row in the README's claims table."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        match = re.match(r"^\| (C\d+) \|", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_every_claim_has_a_counterfactual_test():
    found = counterfactual_tests()
    assert [c for c in CLAIMS if c not in found] == []


def test_the_readme_names_each_claims_counterfactual_test():
    found, rows = counterfactual_tests(), readme_claims()
    assert sorted(rows, key=lambda c: int(c[1:])) == CLAIMS
    for claim in CLAIMS:
        named = re.findall(r"`(test_[a-z0-9_]+\.py::test_counterfactual_c\d+_[a-z0-9_]+)`", rows[claim])
        assert named, f"{claim}: the README's row names no counterfactual test"
        for test in named:
            assert test in found.get(claim, []), f"{claim}: the README names {test}, which does not exist"


def test_a_claim_without_a_counterfactual_test_is_caught(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_counterfactual_c2_a_worker_was_running(): pass\n"
                                        "def test_c3_without_the_word(): pass\n")
    found = counterfactual_tests(tmp_path)
    assert found == {"C2": ["test_x.py::test_counterfactual_c2_a_worker_was_running"]}
    assert [c for c in CLAIMS if c not in found][:2] == ["C1", "C3"]
