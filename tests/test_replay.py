"""Notebook 04's module: the cache keeps state, restarts and a small cache evict it, the next task replays,
replay cost grows with history, and the Replayer catches an incompatible change. Real dev server, no mocks."""

from __future__ import annotations

import json

import pytest

from tutorial import history, replay
from tutorial.replay import CacheBoard, Ledger, LedgerV2, LedgerV3, Playground, settle
from tutorial.server import WorkbookError
from tutorial.solutions.nb04_exercise import predict_replays
from tutorial.worker import WorkerController
from tutorial.workshop import unique


def make(client, **kw):
    return WorkerController(client, task_queue=unique("test-replay"), workflows=[Ledger], **kw)


async def click(button):
    """What a learner's click does, on the session loop: schedule the action, then wait for its result."""
    button.button.click()
    return await button.result()


def start(run, client, worker, name):
    """Start a ledger on a running worker and wait until its first task is done."""
    handle = run(client.start_workflow(Ledger.run, name, id=unique(f"test-ledger-{name}"), task_queue=worker.task_queue))
    run(settle(handle))
    return handle


def test_ledger_applies_signals_refuses_overdrafts_and_closes(run, client):
    w = make(client)
    handle = run(client.start_workflow(Ledger.run, "acc", id=unique("test-ledger"), task_queue=w.task_queue))
    run(handle.signal(Ledger.deposit, 10))  # sent before any worker runs: handled with the first task
    run(w.start())
    run(handle.signal(Ledger.withdraw, 3))
    run(handle.signal(Ledger.withdraw, 100))
    run(settle(handle))
    state = run(handle.query(Ledger.state))
    assert (state.balance, state.transactions, state.open) == (7, 2, True)
    assert run(handle.query(Ledger.refusals)) == ["cannot withdraw 100: balance is 7"]
    run(handle.signal(Ledger.close))
    final = run(handle.result())
    assert final.balance == 7 and not final.open
    run(w.stop())


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
    run(a.terminate("test done"))
    run(w.stop())


def test_a_cache_of_one_forces_an_eviction_and_a_replay_on_every_switch(run, client):
    w = make(client, max_cached_workflows=1)
    run(w.start())
    a, b = start(run, client, w, "A"), start(run, client, w, "B")
    board = CacheBoard(w, names={a.id: "A", b.id: "B"})
    board.refresh("both started")
    for i in range(4):
        handle, name = ((a, "A"), (b, "B"))[i % 2]
        run(handle.signal(Ledger.deposit, 1))
        run(settle(handle))
        step = board.refresh(f"deposit → {name}")
        assert step.cached == (name,)
        assert (step.delta.forced_evictions, step.delta.replays) == (1, 1), step
    assert "forced evictions" in board.html() and "deposit → B" in board.html()
    assert list(board.frame()["new replays"]) == [0, 1, 1, 1, 1]
    for h in (a, b):
        run(h.terminate("test done"))
    run(w.stop())


def test_playground_buttons_keep_every_deposit(run, client):
    w = make(client)
    run(w.start())
    ledgers = {"A": start(run, client, w, "A"), "B": start(run, client, w, "B")}
    board = CacheBoard(w, names={h.id: n for n, h in ledgers.items()})
    play = Playground(w, board, ledgers)
    assert "max_cached_workflows=1" in run(play.size_button.result())
    assert w.settings.max_cached_workflows == 1
    for name in "ABA":
        run(click(play.deposit_buttons[name]))
    assert "restarted" in run(play.restart_button.result())
    assert w.starts == 3
    assert "1 replay(s)" in run(click(play.deposit_buttons["B"]))
    balances = {n: run(h.query(Ledger.state)).balance for n, h in ledgers.items()}
    assert balances == play.sent == {"A": 2, "B": 2}
    run(w.stop())
    assert run(click(play.deposit_buttons["A"])) is None
    assert "restart it first" in str(play.deposit_buttons["A"].last_error)
    for h in ledgers.values():
        run(h.terminate("test done"))


def test_replay_cost_grows_with_history_and_the_cache_avoids_it(run, client):
    frame = run(replay.replay_cost(client, sizes=(20, 400), samples=2))
    print(frame.to_string())
    small, large = frame.iloc[0], frame.iloc[1]
    assert large["history events"] >= 400 > small["history events"] >= 20
    assert list(frame["replays"]) == [2, 2]  # with no cache, every task replayed
    assert large["no cache (ms per task)"] > 2 * large["with cache (ms per task)"]
    assert large["no cache (ms per task)"] > 1.5 * small["no cache (ms per task)"]
    assert replay.cost_chart(frame).axes


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


def test_v3_runs_new_workflows_with_the_grace_period(run, client):
    w = WorkerController(client, task_queue=unique("test-replay-v3"), workflows=[LedgerV3])
    run(w.start())
    h = run(client.start_workflow(LedgerV3.run, "new", id=unique("test-v3"), task_queue=w.task_queue))
    run(h.signal(LedgerV3.close))
    assert not run(h.result()).open
    types = run(history.event_types(h))
    assert "MarkerRecorded" in types and "TimerStarted" in types  # patched() is True for new workflows
    run(w.stop())
    report = run(replay.replay_history(run(h.fetch_history()), LedgerV3))
    assert report.ok
    assert not run(replay.replay_history(run(h.fetch_history()), Ledger)).ok  # and v1 cannot replay v3's history


def test_bad_history_files_give_a_clear_message(run, client, tmp_path):
    from tutorial.basics import Greet, compose_greeting

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
