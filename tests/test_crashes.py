"""Notebook 06's worker loss: after a SIGKILL the next update waits for the sticky queue's timeout and the
surviving worker replays; after a graceful stop it does not wait. Counterfactuals: the stall follows the
timeout setting, and a graceful stop fails the crash check."""

from __future__ import annotations

import pytest

from tutorial import crashes


@pytest.fixture(scope="module")
def losses(run, client):
    return {how: run(crashes.lose_worker(client, how, sticky_timeout_s=2.0)) for how in crashes.HOW}


def test_a_killed_worker_stalls_the_next_update_for_the_sticky_timeout(losses):
    kill = losses["kill"]
    assert kill.cached_on_b, "B held the entity before it died"
    assert crashes.stall_matches_the_timeout(kill), kill.line()
    assert kill.picked_up_by == kill.survivor and kill.survivor_replays == 1 and kill.state_intact, kill
    assert 0 < kill.survivor_task_ms < kill.stall_s * 1000, "the replay is part of the stall, not most of it"


def test_a_graceful_stop_hands_the_task_over_at_once(losses):
    stop = losses["stop"]
    assert stop.cached_on_b and crashes.moved_at_once(stop), stop.line()
    assert stop.picked_up_by == stop.survivor and stop.survivor_replays == 1 and stop.state_intact, stop


def test_counterfactual_c16_a_graceful_stop_is_not_a_crash(losses):
    """The crash check fails where the worker was not lost by a crash: it cannot pass by construction."""
    assert not crashes.stall_matches_the_timeout(losses["stop"])
    assert not crashes.moved_at_once(losses["kill"])


def test_counterfactual_c16_the_stall_follows_the_timeout_setting(run, client):
    longer = run(crashes.lose_worker(client, "kill", sticky_timeout_s=4.0))
    assert crashes.stall_matches_the_timeout(longer) and longer.stall_s >= 3.5, longer.line()


def test_a_wrong_way_to_lose_a_worker_gets_one_line(run, client):
    with pytest.raises(ValueError, match="kill or stop, not 'explode'"):
        run(crashes.lose_worker(client, "explode"))
