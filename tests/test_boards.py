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
    for h in ledgers.values():
        run(h.terminate("test done"))
    run(w.stop())


def answer(button) -> str:
    return " ".join(o.get("data", {}).get("text/plain", "") for o in button.output.outputs)


def test_after_the_clean_up_a_deposit_starts_the_worker_and_opens_a_fresh_ledger(run, client):
    """What Run All leaves (worker stopped, ledgers closed) is restored by the click, which says so."""
    w = make(client)
    run(w.start())
    ledgers = {"A": start(run, client, w, "A"), "B": start(run, client, w, "B")}
    board = CacheBoard(w, names={h.id: n for n, h in ledgers.items()})
    play = Playground(w, board, ledgers, prefix="test-ledger")
    run(click(play.deposit_buttons["A"]))
    for h in ledgers.values():  # the clean-up cell: close both, stop the worker
        run(h.signal(Ledger.close))
        run(h.result())
    run(w.stop())
    text = run(click(play.deposit_buttons["A"]))
    assert text and text.startswith("deposit applied to A"), play.deposit_buttons["A"].last_error
    said = answer(play.deposit_buttons["A"])
    assert "✔" in said and "started it again" in said and "has closed" in said, said
    fresh = play.ledgers["A"]
    assert fresh.id != ledgers["A"].id and fresh.reopened == [fresh.id]
    assert board.name(fresh.id) == "A" and board.steps[-1].label == "deposit → A"
    assert run(fresh.query(Ledger.state)).balance == 1 and play.sent["A"] == 1
    assert "deposit applied to B" in run(click(play.deposit_buttons["B"]))  # B was closed too: opened afresh
    assert play.ledgers["B"].id != ledgers["B"].id
    for h in play.ledgers.values():
        run(h.terminate("test done"))
    run(w.stop())


def test_without_the_needs_a_deposit_after_the_clean_up_fails(run, client):
    """The counterfactual: a bare signal to the closed ledger is refused (NOT_FOUND); the click above restored it."""
    w = make(client)
    run(w.start())
    a = start(run, client, w, "A")
    run(a.signal(Ledger.close))
    run(a.result())
    run(w.stop())
    try:
        run(a.signal(Ledger.deposit, 1))
        refused = None
    except Exception as err:  # noqa: BLE001
        refused = err
    from tutorial.readiness import is_closed
    assert refused is not None and is_closed(refused)


def test_only_the_last_view_of_the_board_stays_live(run, client):
    w = make(client)
    run(w.start())
    board = CacheBoard(w)
    first = board.view()
    board.refresh("step one")
    second = board.view()
    board.refresh("step two")
    assert "step one" in first.value and "step two" not in first.value and "snapshot" in first.value
    assert "step two" in second.value and "snapshot" not in second.value and board.widget is second
    assert second._repr_mimebundle_()["text/html"] == second.value  # a saved notebook still shows the rows
    run(w.stop())
