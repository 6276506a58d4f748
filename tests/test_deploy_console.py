"""Notebook 06's console against the real dev server: the cache board for both workers shows the account move
from a killed worker B to worker A, which replays it; buttons that cannot act say so in one line."""

from __future__ import annotations

import pytest

from tutorial import open_deploys as od
from tutorial import widgets
from tutorial.deploy_console import DeployConsole
from tutorial.worker import WorkerController
from tutorial.workflows import audited_account as aa
from tutorial.workshop import unique


@pytest.fixture()
def console(run, client):
    worker = WorkerController(client, task_queue=unique("test-console"), workflows=[aa.AuditedV1],
                              activities=aa.ACTIVITIES)
    run(worker.start())
    account = run(od.open_accounts(client, worker.task_queue, 1, deposit=1))[0]
    run(od.settled(account, 1))
    console = DeployConsole(client, worker, account)
    yield console
    run(console.close())
    run(worker.stop())


def click(run, console, label: str) -> str:
    return run(widgets.click_and_read(console.buttons[label]))


def test_the_board_shows_the_account_leave_a_killed_worker_and_the_survivor_replay_it(run, console):
    A, B = "worker A (in the kernel)", "worker B (own process)"
    assert "holds the account" in click(run, console, "Start worker B")  # A paused for one deposit
    held = console.board.steps[-1][1]
    assert held[B].cached == ("the account",) and held[A].cached == ()
    assert "already polls" in click(run, console, "Start worker B")
    assert "killed with SIGKILL" in click(run, console, "Kill worker B")
    replays_before = console.board.steps[-1][1][A].replays
    answer = click(run, console, "Send a deposit")
    assert "applied and audited" in answer
    seconds = float(answer.split(" after ")[1].split(" s")[0])
    assert seconds >= 1.5, answer  # it waited for B's sticky timeout (2 s) before A could take it
    after = console.board.steps[-1][1]
    assert after[A].cached == ("the account",) and after[A].replays == replays_before + 1  # A rebuilt it from history
    assert "killed" in after[B].status and after[B].cached == ()
    html = console.board.html()
    assert "+1" in html and "the account" in html


def test_counterfactual_while_b_holds_the_account_worker_a_replays_nothing(run, console):
    A = "worker A (in the kernel)"
    click(run, console, "Refresh view")
    before = console.board.steps[-1][1][A].replays
    assert "applied and audited" in click(run, console, "Send a deposit")  # A holds it: a cache hit, no replay
    assert console.board.steps[-1][1][A].replays == before
    assert "+1" not in console.board.html()


def test_buttons_that_cannot_act_say_why_in_one_line(run, console):
    assert "no running worker B to kill" in click(run, console, "Kill worker B")
    assert "not stuck: nothing to reset" in click(run, console, "Reset stuck accounts")
    run(od.close_all([console.account.handle]))
    assert "closed, not stuck" in click(run, console, "Reset stuck accounts")
    assert "holds the account" in click(run, console, "Start worker B")
    assert "stop or kill it first" in click(run, console, "Deploy v2")
