"""Notebook 04's lesson module, `tutorial.replay`: a restart evicts and the next task replays (seen in the
captured logs), settle waits on the server, replay cost grows with history, the Replayer catches an incompatible
change, a bad history file gets a clear message, and the exercise's solution matches a real worker. Real dev
server, no mocks. (The workflow's own tests: test_workflows_ledger.py; the board's: test_boards.py.)"""

from __future__ import annotations

import json

import pytest

from tutorial import patching, replay
from tutorial.charts.replay import cost_chart
from tutorial.errors import WorkbookError
from tutorial.polling import GaveUp
from tutorial.replay import settle
from tutorial.solutions.nb04_exercise import predict_replays
from tutorial.worker import WorkerController
from tutorial.workflows.greeting import Greet, compose_greeting
from tutorial.workflows.ledger import Ledger, LedgerV2, LedgerV3
from tutorial.workshop import unique


def make(client, **kw):
    return WorkerController(client, task_queue=unique("test-replay"), workflows=[Ledger], **kw)


def start(run, client, worker, name):
    """Start a ledger on a running worker and wait until its first task is done."""
    handle = run(client.start_workflow(Ledger.run, name, id=unique(f"test-ledger-{name}"), task_queue=worker.task_queue))
    run(settle(handle))
    return handle


def test_restart_evicts_and_the_next_task_replays_to_the_same_state(run, client):
    logs = replay.capture_logs()
    w = make(client)
    run(w.start())
    a = start(run, client, w, "A")
    for amount in (5, 6, 7):
        run(a.signal(Ledger.deposit, amount))
        run(settle(a))
    before = run(a.query(Ledger.state))
    assert w.replays(a.id) == 0 and w.cached_ids() == [a.id]
    length = run(a.describe()).history_length

    mark = logs.mark()
    run(w.restart())
    assert w.cached_ids() == []  # the new worker holds nothing
    after = run(a.query(Ledger.state))  # a task for A: the worker must rebuild it first
    assert after == before
    assert w.replays(a.id) == 1
    trace = logs.since(mark, a.id, "replay trace")
    live = logs.since(mark, a.id, "workflow.logger")
    assert [line.text for line in trace] == ["replaying: account A opened", "replaying: deposit 5: balance 5",
                                             "replaying: deposit 6: balance 11", "replaying: deposit 7: balance 18"]
    assert live == []  # workflow.logger stays silent while replaying
    assert max(line.history_length for line in trace) == length  # the replay walked the whole history

    mark = logs.mark()
    run(a.signal(Ledger.deposit, 1))
    run(settle(a))
    assert w.replays(a.id) == 1  # cached again: no second replay
    assert [line.text for line in logs.since(mark, a.id)] == ["deposit 1: balance 19"]
    assert logs.since(mark, a.id)[0].source == "workflow.logger"
    assert list(logs.frame(mark, a.id)["source"]) == ["workflow.logger"]
    run(a.terminate("test done"))
    run(w.stop())


def test_settle_gives_up_with_a_message_when_no_worker_runs(run, client):
    w = make(client)  # never started: nobody takes the first workflow task
    handle = run(client.start_workflow(Ledger.run, "idle", id=unique("test-idle"), task_queue=w.task_queue))
    with pytest.raises(GaveUp, match="still has a workflow task waiting: is the worker running"):
        run(settle(handle, timeout=1))
    assert issubclass(GaveUp, WorkbookError)
    run(handle.terminate("test done"))


def test_replay_cost_grows_with_history_and_the_cache_avoids_it(run, client):
    frame = run(replay.replay_cost(client, sizes=(20, 400), samples=2))
    print(frame.to_string())  # the milliseconds: what usually happens (not asserted: they depend on the machine)
    small, large = frame.iloc[0], frame.iloc[1]
    assert large["history events"] >= 400 > small["history events"] >= 20
    assert replay.uncached_tasks_replayed_whole_history(frame, samples=2), frame.to_string()
    assert list(frame["replays"]) == [2, 2] and list(frame["replays with cache"]) == [0, 0]
    assert large["replay reached event"] > 10 * small["replay reached event"] / 2  # more history, more re-run
    assert not replay.uncached_tasks_replayed_whole_history(frame, samples=3)  # the check counts every task
    assert not replay.uncached_tasks_replayed_whole_history(frame.iloc[0:0], samples=2)
    assert cost_chart(frame).axes


def test_replayer_catches_an_incompatible_change_and_patched_fixes_it(run, client, tmp_path):
    w = make(client)
    run(w.start())
    h = start(run, client, w, "X")
    run(h.signal(Ledger.deposit, 10))
    run(settle(h))
    run(h.signal(Ledger.close))
    assert run(h.result()).balance == 10
    path = run(replay.export_history(h, tmp_path / "x.json"))
    run(w.stop())
    assert json.loads(path.read_text())["events"][0]["eventType"] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED",
                                                                      "WorkflowExecutionStarted")
    reports = {cls: run(replay.replay_history(path, cls)) for cls in (Ledger, LedgerV2, LedgerV3)}
    assert reports[Ledger].ok and reports[LedgerV3].ok
    assert not reports[LedgerV2].ok
    assert reports[LedgerV2].error.startswith("NondeterminismError") and "Nondeterminism" in reports[LedgerV2].error
    assert "FAILS" in reports[LedgerV2].line() and "cleanly" in reports[Ledger].line()


def test_a_new_v3_run_records_the_patch_and_takes_the_timer_and_v1_cannot_replay_it(run, client):
    v3 = run(patching.new_run(client, LedgerV3, (Ledger, LedgerV2, LedgerV3)))
    print(v3.event_types, {name: r.line() for name, r in v3.reports.items()})
    assert patching.patch_guards_new_runs(v3), v3
    assert v3.balance == 5 and v3.markers == ("core_patch",)
    assert "patch marker" in v3.reports["Ledger"].error  # V1 meets a marker it never asked for
    assert not v3.reports["LedgerV2"].ok  # V2 takes the timer but never calls patched(): it fails the same way


def test_counterfactual_patch_a_new_v1_run_records_no_patch_marker(run, client):
    v1 = run(patching.new_run(client, Ledger, (Ledger, LedgerV3)))
    print(v1.event_types)
    assert not patching.patch_guards_new_runs(v1), v1
    assert v1.markers == () and "TimerStarted" not in v1.event_types
    assert v1.reports["Ledger"].ok and v1.reports["LedgerV3"].ok  # the old path replays on both


def test_bad_history_files_give_a_clear_message(run, client, tmp_path):
    w = WorkerController(client, task_queue=unique("test-replay-bad"), workflows=[Ledger, Greet],
                         activities=[compose_greeting])
    run(w.start())
    g = run(client.start_workflow(Greet.run, "x", id=unique("test-greet"), task_queue=w.task_queue))
    run(g.result())
    h = start(run, client, w, "Y")
    run(h.signal(Ledger.deposit, 1))
    run(settle(h))
    good = run(replay.export_history(h, tmp_path / "good.json")).read_text()
    greet = run(replay.export_history(g, tmp_path / "greet.json"))
    run(h.terminate("test done"))
    run(w.stop())

    truncated = tmp_path / "truncated.json"
    truncated.write_text(good[: len(good) // 2])
    gap = tmp_path / "gap.json"
    data = json.loads(good)
    del data["events"][2]
    gap.write_text(json.dumps(data))
    headless = tmp_path / "headless.json"
    data = json.loads(good)
    data["events"] = data["events"][1:]
    headless.write_text(json.dumps(data))
    empty = tmp_path / "empty.json"
    empty.write_text('{"events": []}')
    not_history = tmp_path / "other.json"
    not_history.write_text('{"events": [{"eventId": "one"}]}')
    cases = {
        tmp_path / "missing.json": "No history file",
        truncated: "not complete JSON",
        greet: "history of a 'Greet' workflow",
        gap: "missing from the middle",
        headless: "does not start with WorkflowExecutionStarted",
        empty: "holds no events",
        not_history: "not a Temporal history",
    }
    for path, expected in cases.items():
        with pytest.raises(WorkbookError, match=expected):
            run(replay.replay_history(path, Ledger, timeout=10))


@pytest.mark.parametrize("sequence,size,replays", [
    ("ABAB", 1, 2), ("AABBAB", 1, 2), ("ABACA", 2, 0), ("ABCABC", 2, 3), ("ABCCBA", 2, 1), ("ABAB", 2, 0),
])
def test_exercise_solution_predicts(sequence, size, replays):
    assert predict_replays(sequence, size) == replays


def test_exercise_solution_matches_the_real_worker(run, client):
    for sequence, size in (("ABACA", 2), ("ABCABC", 2)):
        measured = run(replay.run_sequence(client, sequence, size))
        assert measured["replays"] == predict_replays(sequence, size), measured
    with pytest.raises(ValueError):
        run(replay.run_sequence(client, "AB", 0))
    with pytest.raises(ValueError):
        run(replay.run_sequence(client, "A1", 1))
