"""Notebook 05's client side: the forms' parsing, the audit by request id, waiting until an entity is idle,
the chain of runs read from the server, the charts. The experiments and the claims' checks:
tests/test_rollover_experiments.py and tests/test_update_limits.py; the workflows themselves:
tests/test_workflows_long_lived_account.py."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib
import pytest

from tutorial import continue_as_new as can
from tutorial import limits
from tutorial.charts import continue_as_new as charts
from tutorial.errors import WorkbookError
from tutorial.workflows import long_lived_account as lla
from tutorial.workflows.domain import Transaction
from tutorial.workflows.long_lived_account import EntityStatus, SafeAccount
from tutorial.workshop import unique

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def worker(started_worker):
    with started_worker("test-nb05", lla.WORKFLOWS, lla.ACTIVITIES) as w:
        yield w


def test_audit_counts_lost_and_duplicated_by_request_id():
    sent = [Transaction("deposit", 1, f"r{i}") for i in range(5)]
    result = can.audit(sent, ["r0", "r1", "r1", "x", "r4"])
    assert result.row() == {"sent": 5, "processed": 3, "lost": 2, "duplicated": 1}
    assert result.lost_ids == ["r2", "r3"]


def test_the_threshold_form_takes_a_whole_number_up_to_the_servers_hard_limit():
    assert can.parse_threshold({"events": " 1_000 "}) == {"events": 1_000}
    assert can.parse_threshold({"events": "51,200"}) == {"events": limits.HISTORY_EVENTS_MAX.value}
    with pytest.raises(ValueError, match=r"^events: enter a whole number, not 'fifty'$"):
        can.parse_threshold({"events": " fifty"})
    for text in ("19", "51201", "0"):
        with pytest.raises(ValueError, match=r"^events: from 20 to 51,200 \(the server's hard limit\), not "):
            can.parse_threshold({"events": text})
    with pytest.raises(ValueError, match=r"^events: must be positive, not '-5'$"):
        can.parse_threshold({"events": " -5"})
    with pytest.raises(ValueError, match=r"^events: enter a whole number$"):
        can.parse_threshold({"events": ""})


def test_the_burst_form_takes_sizes_a_laptop_sends_and_a_threshold_the_burst_crosses():
    assert can.parse_burst({"deposits": "300", "withdrawals": "0", "threshold": "100"}) == \
        {"deposits": 300, "withdrawals": 0, "threshold": 100}
    bad = {
        ("2001", "0", "100"): "deposits: from 1 to 2,000, not 2,001",
        ("0", "0", "100"): "deposits: from 1 to 2,000, not 0",
        ("300", "201", "100"): "withdrawals: from 0 to 200, not 201",
        ("-5", "0", "100"): "deposits: must be positive, not '-5'",
        ("300", "-5", "100"): "withdrawals: must be positive or 0, not '-5'",
        ("300", "30", "-5"): "threshold: must be positive, not '-5'",
        ("300", "30", "301"): "threshold: from 20 events up to the number of deposits",
        ("300", "30", "10"): "threshold: from 20 events",
        ("300", "2.5", "100"): "withdrawals: enter a whole number, not '2.5'",
    }
    for (deposits, withdrawals, threshold), message in bad.items():
        with pytest.raises(ValueError) as err:
            can.parse_burst({"deposits": deposits, "withdrawals": withdrawals, "threshold": threshold})
        assert str(err.value).startswith(message) and len(str(err.value)) < 90  # one short red line


def test_the_demo_threshold_sits_first_beside_the_servers_limits():
    rows = limits.rows(can.threshold_row(50))
    assert rows[0]["limit"] == "demo threshold (this notebook): 50 events" and rows[0].keys() == rows[1].keys()
    assert len(rows) == 1 + len(limits.ALL)


def test_wait_until_idle_raises_a_clear_error_instead_of_returning_a_busy_status(run):
    class Busy:  # an entity whose inbox never drains: what a stopped or starved worker looks like
        id = "busy-account"

        async def describe(self):
            return SimpleNamespace(run_id="run-1", history_length=9,
                                   raw_description=SimpleNamespace(HasField=lambda name: False))

        async def query(self, *_args, **_kwargs):
            return EntityStatus(run_number=1, run_id="run-1", first_execution_run_id="run-1",
                                continued_run_id=None, history_length=9, history_size=900,
                                continue_as_new_suggested=False, max_events=0, balance=0, transactions=0,
                                queued=3, carried_in=0, processed_this_run=0, duplicates_ignored=0, rejected=0)

    with pytest.raises(WorkbookError, match=r"^busy-account was not idle \(3 deposits still queued, run 1\): "
                                            r"is its worker running.*gave up after 0.2 s"):
        run(can.wait_until_idle(Busy(), timeout=0.2))


def test_wait_until_idle_waits_for_a_pending_workflow_task_too(run):
    class Unsteady:  # the query answered, but the server still has a task for the run: not idle yet
        id = "unsteady-account"

        async def describe(self):
            return SimpleNamespace(run_id="run-1", history_length=9,
                                   raw_description=SimpleNamespace(HasField=lambda name: True))

        async def query(self, *_args, **_kwargs):
            return EntityStatus(run_number=2, run_id="run-1", first_execution_run_id="run-0",
                                continued_run_id="run-0", history_length=9, history_size=900,
                                continue_as_new_suggested=False, max_events=0, balance=0, transactions=0,
                                queued=0, carried_in=0, processed_this_run=0, duplicates_ignored=0, rejected=0)

    with pytest.raises(WorkbookError, match=r"not idle \(a workflow task is still waiting, run 2\)"):
        run(can.wait_until_idle(Unsteady(), timeout=0.2))


def test_the_chain_of_runs_is_read_from_the_server_and_charted(run, client, worker):
    workflow_id = unique("test-nb05-chain")
    handle = run(client.start_workflow(SafeAccount.run, can.new_account(workflow_id[-40:], max_events=0),
                                       id=workflow_id, task_queue=worker.task_queue))
    for i in range(2):
        run(handle.signal(SafeAccount.deposit, Transaction("deposit", 1, f"before-{i}")))
        assert run(can.wait_until_idle(handle)).run_number == i + 1
        run(handle.signal(SafeAccount.roll_over))
        assert run(can.wait_until_idle(handle)).run_number == i + 2
    runs = run(can.run_chain(client, workflow_id))
    frame = can.chain_frame(runs)
    print(frame.to_string(index=False))
    assert [r.run_number for r in runs] == [1, 2, 3]
    assert [r.closed_by for r in runs] == ["continued as new", "continued as new", "still running"]
    assert all(later.continued_from == earlier.run_id for earlier, later in zip(runs, runs[1:]))
    assert [r.deposits_delivered for r in runs] == [1, 1, 0] and {r.first_execution_run_id for r in runs} == \
        {runs[0].run_id}
    assert list(frame["run_id"]) == [r.run_id[:8] for r in runs]
    assert [r.updates_accepted for r in runs] == [0, 0, 0] and "update_ids" not in frame.columns
    fig = charts.chain(runs, 40)
    assert len(fig.axes[0].patches) == 3 and "51,200 events" in fig.axes[0].get_title()
    run(handle.signal(SafeAccount.close_account))
    assert run(handle.result()).balance == 2


def test_the_growth_chart_draws_events_and_bytes_against_deposits_sent():
    samples = [{"deposits sent": n, "history length": 5 + 2 * n, "history bytes": 1_000 + 300 * n}
               for n in (0, 10, 20)]
    fig = charts.growth(samples)
    events, size = fig.axes
    assert list(events.lines[0].get_ydata()) == [5, 25, 45] and list(size.lines[0].get_ydata())[-1] == 7_000 / 1024
    assert "50 MB" in events.get_title()
