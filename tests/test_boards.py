"""Notebook 04's boards: the cache board counts a forced eviction and a replay on every switch with a cache of
one, and the playground's buttons never lose or double a deposit. Real dev server, real clicks."""

from __future__ import annotations

from tutorial.boards import CACHE_SIZES, CacheBoard, Playground
from tutorial.replay import settle
from tutorial.worker import WorkerController
from tutorial.workflows.ledger import Ledger
from tutorial.workshop import unique


def make(client, **kw):
    return WorkerController(client, task_queue=unique("test-boards"), workflows=[Ledger], **kw)


async def click(button):
    """What a learner's click does, on the session loop: schedule the action, then wait for its result."""
    button.button.click()
    return await button.result()


def start(run, client, worker, name):
    """Start a ledger on a running worker and wait until its first task is done."""
    handle = run(client.start_workflow(Ledger.run, name, id=unique(f"test-ledger-{name}"), task_queue=worker.task_queue))
    run(settle(handle))
    return handle


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
    assert list(play.size.options) == list(CACHE_SIZES)
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
