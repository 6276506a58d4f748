"""Notebook 04's claims as experiments, `tutorial.eviction`: each check holds on the notebook's experiment and
answers False on a variant where the claim is false (counterfactual tests). Real dev server, nothing mocked."""

from __future__ import annotations

from tutorial import eviction, replay
from tutorial.replay import settle
from tutorial.worker import WorkerController
from tutorial.workflows.ledger import Ledger
from tutorial.workshop import unique


def make(client, **kw):
    return WorkerController(client, task_queue=unique("test-eviction"), workflows=[Ledger], **kw)


def start(run, client, worker, name):
    """Start a ledger on a running worker and wait until its first task is done."""
    handle = run(client.start_workflow(Ledger.run, name, id=unique(f"test-evict-{name}"), task_queue=worker.task_queue))
    run(settle(handle))
    return handle


def finish(run, worker, *handles):
    for h in handles:
        run(h.terminate("test done"))
    run(worker.stop())


def stay_with_b_between_tasks(run, client, cache_size):
    """C3's experiment on A, with a deposit into a second ledger B after each of A's tasks."""
    logs = replay.capture_logs()
    w = make(client, max_cached_workflows=cache_size)
    run(w.start())
    a, b = start(run, client, w, "A"), start(run, client, w, "B")

    async def task_for_b(_label):
        await b.signal(Ledger.deposit, 1)
        await settle(b)

    result = run(eviction.deposit_and_query(w, a, logs, (10, 20, 30), on_task=task_for_b))
    finish(run, w, a, b)
    return result


def test_c3_the_workflow_stays_cached_on_a_running_worker(run, client):
    logs = replay.capture_logs()
    w = make(client)
    run(w.start())
    a = start(run, client, w, "A")
    r = run(eviction.deposit_and_query(w, a, logs, (10, 20, 30)))
    print(r)
    assert eviction.stayed_in_cache(r), r
    assert (r.tasks, r.balance_before, r.balance_after) == (4, 0, 60)
    finish(run, w, a)


def test_counterfactual_c3_a_cache_too_small_does_not_keep_the_workflow(run, client):
    big = stay_with_b_between_tasks(run, client, cache_size=10)
    small = stay_with_b_between_tasks(run, client, cache_size=1)
    print("cache 10:", big, "\ncache 1:", small)
    assert eviction.stayed_in_cache(big), big
    assert not eviction.stayed_in_cache(small), small
    # the opening balance query left A cached for the first deposit; each later task found B in its place
    assert small.replays == 3 and small.trace_lines > 0
    assert small.balance_after == 60  # the replays lost nothing: only the cache claim is false


def test_counterfactual_c4_without_a_restart_the_cache_keeps_the_workflow(run, client):
    w = make(client)
    run(w.start())
    a = start(run, client, w, "A")
    kept = run(eviction.evict(w, a, restart=False))
    lost = run(eviction.evict(w, a, restart=True))
    print("no restart:", kept, "\nrestart:", lost)
    assert not eviction.cache_lost_workflow(kept), kept
    assert eviction.cache_lost_workflow(lost), lost
    assert lost.identity_after != lost.identity_before and kept.identity_after == kept.identity_before
    finish(run, w, a)


def alternation(run, client, cache_size):
    w = make(client, max_cached_workflows=cache_size)
    run(w.start())
    a, b = start(run, client, w, "A"), start(run, client, w, "B")
    switches = run(eviction.alternate(w, {"A": a, "B": b}, rounds=2))
    balances = [run(h.query(Ledger.state)).balance for h in (a, b)]
    finish(run, w, a, b)
    return switches, balances


def test_counterfactual_c4_a_cache_big_enough_evicts_nothing(run, client):
    small, small_balances = alternation(run, client, cache_size=1)
    big, big_balances = alternation(run, client, cache_size=2)
    print("cache 1:", small, "\ncache 2:", big)
    assert eviction.each_switch_evicted(small), small
    assert not eviction.each_switch_evicted(big), big
    assert all(s.forced_evictions == 0 and s.replays == 0 for s in big)
    assert small_balances == big_balances == [2, 2]
    assert not eviction.each_switch_evicted([])


def test_counterfactual_c5_without_an_eviction_the_next_task_does_not_replay(run, client):
    logs = replay.capture_logs()
    w = make(client)
    run(w.start())
    a = start(run, client, w, "A")
    for amount in (5, 6, 7):
        run(a.signal(Ledger.deposit, amount))
        run(settle(a))
    before = run(a.query(Ledger.state))
    cached = run(eviction.next_task(w, a, logs, before))  # the worker still holds A
    run(eviction.evict(w, a))
    evicted = run(eviction.next_task(w, a, logs, before))
    print("cached:", cached, "\nevicted:", evicted)
    assert not eviction.replayed_before_answering(cached), cached
    assert cached.replays == 0 and cached.replayed_up_to is None and cached.state_after == before
    assert eviction.replayed_before_answering(evicted), evicted
    assert (evicted.signals, evicted.replayed_deposits) == (3, 3)
    finish(run, w, a)
