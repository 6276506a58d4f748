"""The benchmark's model: settings refuse nonsense (the command's and notebook 07's form's), percentiles
interpolate, and the derived figures (floors, the helpers' paired overhead, replay, overload) are what they say."""

from __future__ import annotations

import pytest

from tutorial import bench
from tutorial.bench.model import EVENT_KEYS, FORM_MAX_CALLERS, FORM_MAX_REPETITIONS, Latency, Results, Throughput


def test_settings_refuse_nonsense():
    for bad in ({"n": 0}, {"warmup": -1}, {"concurrency": ()}, {"concurrency": (0,)}, {"duration": 0},
                {"overload_reps": 0}, {"paced_n": -1}, {"settle": -1}, {"pause_ms": (20, 10)},
                {"pause_ms": (-1, 10)}):
        with pytest.raises(ValueError):
            bench.Settings(**bad)
    assert bench.Settings(concurrency=(8, 1, 8)).concurrency == (1, 8)


def test_units_count_every_step_of_a_run():
    s = bench.Settings(n=4, warmup=1, concurrency=(1, 8), overload_reps=3, paced_n=2, settle=5)
    reps = 5
    # 9 latency rows, 2 of them settled first, 7 paced rows, 7 throughput keys, 2 overloaded rows, 12 replays
    assert s.units() == reps * 9 + 5 * 2 + 2 * 7 + 20 * 7 * 2 + 2 * 3 + 24
    assert bench.Settings(n=4, warmup=1, concurrency=(1, 8), overload=False, paced_n=2, settle=5).units() \
        == s.units() - 6


def test_the_form_makes_a_short_run():
    s = bench.settings_from_form({"repetitions": "12", "callers": "64, 1,8,"})
    assert (s.n, s.concurrency, s.warmup, s.duration, s.overload_reps) == (12, (1, 8, 64), 3, 0.3, 5)
    assert s.paced_n == 12 and s.settle == bench.Settings.settle  # paced as many times; settled as the command


@pytest.mark.parametrize("values, says", [
    ({"repetitions": "many", "callers": "1"}, "repetitions: a whole number"),
    ({"repetitions": "2.5", "callers": "1"}, "repetitions: a whole number"),
    ({"repetitions": "12", "callers": "1,x"}, "callers: whole numbers separated by commas"),
    ({"repetitions": "0", "callers": "1"}, "repetitions: at least 1"),
    ({"repetitions": "12", "callers": "1,0"}, "callers: one or more whole numbers of at least 1"),
    ({"repetitions": "12", "callers": " , "}, "callers: one or more"),
    ({"repetitions": str(FORM_MAX_REPETITIONS + 1), "callers": "1"}, "the command line takes more"),
    ({"repetitions": "12", "callers": f"1,{FORM_MAX_CALLERS + 1}"}, "the command line takes more"),
])
def test_the_form_refuses_nonsense_in_one_short_line(values, says):
    with pytest.raises(ValueError) as caught:
        bench.settings_from_form(values)
    message = str(caught.value)
    assert says in message and "\n" not in message and len(message) < 100, message


def test_percentile_interpolates():
    assert bench.percentile([4, 1, 3, 2], 50) == 2.5
    assert bench.percentile([1, 2, 3, 4, 5], 95) == pytest.approx(4.8)
    assert bench.percentile([7], 95) == 7
    assert bench.percentile([], 50) != bench.percentile([], 50)  # nan: nothing measured


def figures() -> Results:
    """A run's results, written by hand, to check the arithmetic on known numbers."""
    r = Results(settings=bench.Settings(n=4, concurrency=(1,)), target="by hand")
    r.latency["floor"] = Latency("floor", [2.0, 2.0, 2.0, 2.0], events_per_op=0.0)
    r.latency["update"] = Latency("update", [10.0, 12.0, 14.0, 16.0], events_per_op=5.0)
    r.latency["query"] = Latency("query", [4.0, 4.0, 4.0, 4.0], events_per_op=0.0)
    r.latency["update_raw"] = Latency("update_raw", [10.0, 10.0, 20.0, 20.0])
    r.latency["update_helper"] = Latency("update_helper", [10.5, 10.5, 20.5, 20.5])
    r.overloaded["update"] = Latency("update", [39.0, 39.0, 39.0, 39.0])
    r.replay_ms_per_1000 = [100.0, 300.0]
    r.throughput[("floor", 1)] = Throughput("floor", 1, ops=50, seconds=0.5)
    return r


def test_the_derived_figures():
    r = figures()
    assert r.floor_ms == 2.0 and r.x_floor(13.0) == 6.5
    assert r.helper_ratio == pytest.approx(15.5 / 15.0)
    assert r.helper_paired_overhead_ms == pytest.approx(0.5)  # the median of the pairs' differences
    assert r.helper_paired_overhead == pytest.approx(0.5 / 15.0) and r.helper_within_budget
    assert r.replay_p50 == 200.0 and r.replay_ms_at(10_240) == pytest.approx(2048.0)
    assert r.overload_ratio("update") == pytest.approx(3.0)
    assert r.events_per_op() == {"query": 0.0, "update": 5.0}  # in EVENT_KEYS' order, measured ones only
    assert list(r.events_per_op()) == [k for k in EVENT_KEYS if k in r.latency]
    assert r.throughput[("floor", 1)].per_s == 100.0
    assert Throughput("floor", 1, ops=5, seconds=0).per_s == 0.0
    assert Latency("x", [1.0, 2.0, 6.0]).mean == 3.0 and Latency("x", []).mean != Latency("x", []).mean


def test_the_decision_uses_the_paced_figure_when_there_is_one():
    r = figures()
    assert r.chosen_rhythm == bench.BACK_TO_BACK and r.chosen("update") is r.latency["update"]
    r.paced["floor"] = Latency("floor", [4.0, 4.0])
    r.paced["update"] = Latency("update", [20.0, 20.0])
    assert r.chosen_rhythm == bench.PACED and r.chosen("update") is r.paced["update"]
    assert r.x_floor(20.0, bench.PACED) == 5.0 and r.x_floor(20.0) == 10.0  # each rhythm against its own floor
    assert r.pace_ratio("update") == pytest.approx(13.0 / 20.0)


def test_machine_names_cores_and_python():
    assert "cores" in bench.machine() and "Python 3." in bench.machine()
