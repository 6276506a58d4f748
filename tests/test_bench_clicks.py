"""A click's cost where learners click: the helpers' pairs run in a real Jupyter kernel (`bench.clicks`), where
each widget trait change is a message to the front end; a fast click sends exactly one, its answer."""

from __future__ import annotations

import pytest

from tutorial import server
from tutorial.bench import clicks


@pytest.fixture(scope="module")
def cost(run, client):
    info = server.server_info()
    return run(clicks.in_kernel(info.address, info.namespace, n=4, warmup=1))


def test_the_pairs_run_in_a_kernel_and_each_click_sends_one_widget_message(cost):
    assert len(cost.raw_ms) == len(cost.helper_ms) == 4 and cost.clicks == 5
    assert min(cost.raw_ms + cost.helper_ms) > 0
    # the kernel really talked to a front end: every click's answer went out as a comm message, and nothing else
    assert cost.widget_messages == cost.clicks, cost.widget_messages
    line = cost.line()
    assert line.startswith("a click in a Jupyter kernel: update via ActionForm.submit p50") and "budget" in line
    assert "1.0 widget messages per click" in line and "own time outside the update" in line
    assert len(cost.own_ms) == 4 and 0 < cost.own_p50_ms < min(cost.helper_ms), cost.own_ms


def test_the_figures_are_paired_medians():
    c = clicks.ClickCost(raw_ms=[10.0, 10.0, 20.0], helper_ms=[10.2, 10.4, 20.3], clicks=3, widget_messages=3)
    assert c.overhead_ms == pytest.approx(0.3) and c.overhead == pytest.approx(0.03) and c.within_budget
    assert not clicks.ClickCost([10.0], [11.0], 1, 6).within_budget and clicks.ClickCost([10.0], [11.0], 1, 6) \
        .messages_per_click == 6


def test_a_server_that_is_not_there_is_one_clear_line(run):
    with pytest.raises(Exception) as caught:
        run(clicks.in_kernel(f"127.0.0.1:{server.free_port()}", n=1, warmup=0))
    assert "the click measurement in a Jupyter kernel failed" in str(caught.value)
    assert "Nothing is listening" in str(caught.value) and "\n" not in str(caught.value).strip()
