"""Notebook 05's per-run message limits, live on a separate dev server with lowered caps (C15), beside their
counterfactuals: an entity that ignores the server's suggestion meets the refused update and loses updates; the
safe entity continues-as-new at 90% of the cap and loses nothing. Also the in-flight cap, the signal cap, the
table of what ends a run first, and that the lowered server and its worker stop when the block ends."""

from __future__ import annotations

import math
import os

import pytest

from tutorial import limits
from tutorial import update_limits as ul
from tutorial.server import port_in_use
from tutorial.workflows.long_lived_account import SafeAccount, ThresholdOnlyAccount

CAPS = ul.Lowered(total_updates=10, in_flight=3, signals=30)


@pytest.fixture(scope="module")
def lowered(run):
    block = ul.lowered_server(CAPS)
    yield run(block.__aenter__())
    run(block.__aexit__(None, None, None))


def test_the_lowered_server_has_its_own_caps_and_suggests_at_90_percent():
    assert CAPS.dynamic_config() == {"history.maxTotalUpdates": 10, "history.maxInFlightUpdates": 3,
                                     "history.maximumSignalsPerExecution": 30}
    assert CAPS.suggested_after == 9 and ul.Lowered(total_updates=2_000).suggested_after == 1_800
    assert ul.Lowered(total_updates=5).suggested_after == math.ceil(5 * 0.9) == 5


def test_counterfactual_c15_an_entity_that_ignores_the_suggestion_meets_the_refused_update(run, lowered):
    stubborn = run(ul.update_cap_experiment(lowered, ThresholdOnlyAccount, 2 * CAPS.total_updates + 5))
    safe = run(ul.update_cap_experiment(lowered, SafeAccount, 2 * CAPS.total_updates + 5))
    print("threshold only:", stubborn.figures(), "\nsafe:", safe.figures())
    print("first refusal:", stubborn.refused[0])
    assert ul.refused_past_the_cap(stubborn), stubborn.figures()
    assert stubborn.refused[0].code == "FAILED_PRECONDITION" and stubborn.refused[0].suggested_before
    assert not ul.lost_nothing_past_the_update_cap(stubborn), "the check must see the refused updates"
    assert stubborn.audit.lost == len(stubborn.refused) == CAPS.total_updates + 5
    assert ul.lost_nothing_past_the_update_cap(safe), safe.figures()
    assert ul.continued_as_new_when_suggested(safe), safe.figures()
    assert not ul.refused_past_the_cap(safe) and not ul.continued_as_new_when_suggested(stubborn)
    assert 4 <= safe.events_per_update <= 6, "a synchronous update adds about five events"


def test_the_in_flight_cap_refuses_one_more_and_the_sdk_retries_it_until_a_slot_frees(run, lowered):
    r = run(ul.in_flight_cap_experiment(lowered))
    print(r)
    assert ul.in_flight_cap_held(r), r
    assert sorted(r.answers + [r.sdk_balance]) == [96, 97, 98, 99]


def test_the_signal_cap_refuses_the_next_signal_and_nothing_suggests_continue_as_new(run, lowered):
    r = run(ul.signal_cap_experiment(lowered, extra=3))
    print(r.refused[:1], r.codes, r.status)
    assert ul.signals_refused_past_the_cap(r), r
    assert r.codes == {"INVALID_ARGUMENT"}
    assert not r.status.continue_as_new_suggested, "measured: the signal count does not suggest continue-as-new"


def test_the_checks_fail_on_made_up_results_that_break_them():
    steps = [ul.CapStep(n=n, run_number=1, events_before=3 + 5 * n, suggested_before=n > 9, balance=n)
             for n in range(1, 13)]  # twelve accepted: the server did not refuse past the cap
    r = ul.UpdateCap(entity="x", cap=10, suggested_after=9, steps=steps, audit=ul.audit([], []), runs=[],
                     final_balance=12, expected_balance=12, seconds=0)
    assert not ul.refused_past_the_cap(r) and not ul.lost_nothing_past_the_update_cap(r)


def test_what_ends_a_run_first_is_the_cap_for_cheap_messages_and_the_history_for_costly_ones():
    cheap = ul.what_ends_a_run_first(ul.MessageCost("update", limits.UPDATES_PER_RUN, 5.0, 700))
    print(cheap)
    assert cheap["what ends the run first"] == "refused by the cap"
    assert cheap["continue-as-new suggested after"] == "819 (4,096 events)"
    assert cheap["terminated after"] == "10,240" and cheap["refused after"].startswith("2,000")
    batched = ul.what_ends_a_run_first(ul.MessageCost("update", limits.UPDATES_PER_RUN, 2.0, 700))
    assert batched["continue-as-new suggested after"] == "1,800 (90% of the update cap)"
    costly = ul.what_ends_a_run_first(ul.MessageCost("signal", limits.SIGNALS_PER_RUN, 6.0, 500))
    assert costly["what ends the run first"] == "terminated by the history limit"


def test_measured_costs_put_the_caps_first_with_the_real_limits(run, client):
    from tutorial.worker import WorkerController
    from tutorial.workflows import long_lived_account as lla
    from tutorial.workshop import unique

    worker = WorkerController(client, task_queue=unique("test-nb05-costs"), workflows=lla.WORKFLOWS,
                              activities=lla.ACTIVITIES)
    run(worker.start())
    try:
        costs = run(ul.measure_costs(client, worker.task_queue, n=4))
    finally:
        run(worker.stop())
    rows = [ul.what_ends_a_run_first(c) for c in costs]
    print(*rows, sep="\n")
    events = {c.kind: c.events for c in costs}
    assert events["signal (deposit)"] >= 1 and 4 <= events["update (deposit_now)"] <= 6
    assert events["update awaiting an activity (withdraw)"] > events["update (deposit_now)"]
    assert all(row["what ends the run first"] == "refused by the cap" for row in rows)


def test_the_lowered_server_and_its_worker_stop_when_the_block_ends_even_after_an_error(run):
    seen = {}

    async def fail_inside():
        async with ul.lowered_server(ul.Lowered(total_updates=4)) as low:
            seen.update(low=low)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run(fail_inside())
    low = seen["low"]
    assert not low.worker.running and low.pid
    assert not port_in_use(int(low.address.rsplit(":", 1)[1])), "nothing listens where the lowered server was"
    with pytest.raises(ProcessLookupError):
        os.kill(low.pid, 0)  # the process is gone (stopped and reaped)
