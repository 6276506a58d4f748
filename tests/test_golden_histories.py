"""Golden histories (tests/golden/, recorded by scripts/golden_histories.py) replay against today's code, with
no server: a change to a workflow that would break executions recorded by older code fails here first.
The counterfactual: the same history against an incompatible release fails with TMPRL1100."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tutorial.workflows import audited_account as aa
from tutorial.workflows import ledger
from tutorial.workflows import signal_account as sa
from tutorial.workflows import update_account as ua

GOLDEN = Path(__file__).parent / "golden"
TODAY = {  # golden history -> the workflow class that replays it in today's code
    "audited_account_v1": aa.AuditedV3,  # a v1-era history, on the patched release
    "audited_account_v3": aa.AuditedV3,
    "update_account": ua.UpdateAccount,
    "signal_account": sa.SignalAccount,
    "ledger_v1": ledger.LedgerV3,
}


def replay(name: str, workflow_class: type):
    history = WorkflowHistory.from_json(name, (GOLDEN / f"{name}.json").read_text())
    return Replayer(workflows=[workflow_class]).replay_workflow(history, raise_on_replay_failure=False)


def test_every_golden_history_has_todays_code():
    assert sorted(p.stem for p in GOLDEN.glob("*.json")) == sorted(TODAY)


@pytest.mark.parametrize("name", sorted(TODAY))
def test_a_golden_history_replays_on_todays_code(run, name):
    result = run(replay(name, TODAY[name]))
    assert result.replay_failure is None, f"{name}: {result.replay_failure}"


@pytest.mark.parametrize("name, incompatible", [("audited_account_v1", aa.AuditedV2),
                                                ("audited_account_v1", aa.AuditedV4), ("ledger_v1", ledger.LedgerV2)])
def test_counterfactual_c17_an_incompatible_release_fails_the_golden_history(run, name, incompatible):
    result = run(replay(name, incompatible))
    assert result.replay_failure is not None and "TMPRL1100" in str(result.replay_failure)
