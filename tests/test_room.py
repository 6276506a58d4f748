"""The instructor's view of the room (`tutorial.room`) against a real dev server of its own: who is here, how far
each got, who is stuck (and only while stuck), and a clean-up that touches exactly the workflows it showed."""

from __future__ import annotations

import asyncio

import pytest

from tutorial import room, signal_failures
from tutorial.errors import WorkbookError
from tutorial.polling import until
from tutorial.worker import WorkerController
from tutorial.workflows import signal_handlers
from tutorial.workflows.greeting import Counter, Greet, compose_greeting
from tutorial.workshop import unique

GREETING = dict(workflows=[Greet, Counter, *signal_handlers.WORKFLOWS], activities=[compose_greeting])


@pytest.fixture(scope="module")
def client(own_server_client):
    """A server of its own: the clean-up of "everyone" must not end another test file's workflows."""
    return own_server_client


async def _listed(client, workflow_id: str) -> None:
    """Visibility lags a start by a few milliseconds: wait until the list shows it."""
    await until(lambda: _count(client, f'WorkflowId = "{workflow_id}"'), lambda n: n == 1, timeout=10)


async def _count(client, query: str) -> int:
    return len([w async for w in client.list_workflows(query)])


def test_the_learner_of_an_id_is_everything_before_its_first_tag():
    assert room.owner("ann-b-nb00-greet-1a2b3c") == ("ann-b", "nb00")
    assert room.owner("ann-setup-check-1a2b3c") == ("ann", "setup-check")
    assert room.owner("ann-bench-7f7f7f-signal-3") == ("ann", "bench")
    assert room.owner("someone-elses-order-42") is None and room.owner("nb00-greet") is None
    for name in ("ann", "ann-b", "nb1", "benchmark", "x" * 32):
        with room.as_learner(name):
            assert all(room.owner(unique(f"{tag}-x")) == (name, tag) for tag in ("nb00", "nb07", "setup-check"))


def test_counterfactual_a_name_with_a_tag_in_it_would_be_misread_which_is_why_workshop_refuses_it():
    with room.as_learner("x-nb01-y"):
        made = "x-nb01-y-nb00-greet-1a2b3c"  # what unique() would make, had workshop.learner() allowed the name
        with pytest.raises(WorkbookError):
            unique("nb00-greet")
    assert room.owner(made) == ("x", "nb01")


def test_who_is_here_and_how_far_each_got(run, client):
    async def scenario():
        with room.as_learner("ann"):
            async with WorkerController(client, task_queue=unique("nb00"), **GREETING) as w:
                await client.execute_workflow(Greet.run, "ann", id=unique("nb00-greet"), task_queue=w.task_queue)
                counter = await client.start_workflow(Counter.run, id=unique("nb02-counter"), task_queue=w.task_queue)
                await counter.query(Counter.current)  # its first task done: open, waiting for signals, not stuck
        with room.as_learner("ann-b"):
            other = await client.start_workflow(Greet.run, "b", id=unique("nb01-greet"), task_queue=unique("nb01"))
        await _listed(client, other.id)
        return await room.survey(client, waiting_s=60), await room.survey(client, learner="ann", waiting_s=60)

    everyone, ann_only = run(scenario())
    ann = everyone.learners["ann"]
    assert ann.finished("nb00") and not ann.finished("nb02") and ann.progress() == "nb00 ✔ · nb02 … 1 open"
    assert everyone.learners["ann-b"].runs == {"nb01": 1}
    assert set(ann_only.learners) == {"ann"}, "ann's survey shows ann-b's workflows (they start with 'ann-')"
    row = next(r for r in everyone.rows() if r["learner"] == "ann")
    assert (row["workflows"], row["open"], row["completed"], row["stuck"]) == (2, 1, 1, 0), row
    assert "ann, ann-b" in everyone.summary()


def test_counterfactual_a_learner_is_stuck_only_while_no_worker_takes_their_task(run, client):
    async def scenario():
        with room.as_learner("cara"):
            queue = unique("nb00")
            handle = await client.start_workflow(Greet.run, "cara", id=unique("nb00-greet"), task_queue=queue)
            await _listed(client, handle.id)
            young = await room.survey(client, learner="cara", waiting_s=60)  # waiting, but not for long yet
            await asyncio.sleep(1.2)
            waiting = await room.survey(client, learner="cara", waiting_s=1)
            async with WorkerController(client, task_queue=queue, **GREETING):
                await handle.result()
            served = await room.survey(client, learner="cara", waiting_s=1)
        return young, waiting, served

    young, waiting, served = run(scenario())
    assert not young.is_stuck("cara"), young.stuck_rows()
    assert waiting.is_stuck("cara") and "no worker has polled it" in waiting.stuck[0].why, waiting.stuck_rows()
    assert not served.is_stuck("cara") and served.learners["cara"].finished("nb00"), served.rows()


def test_counterfactual_a_workflow_task_that_keeps_failing_is_stuck_a_healthy_one_is_not(run, client):
    async def scenario():
        with room.as_learner("dan"):
            async with WorkerController(client, task_queue=unique("nb02"), **GREETING) as w:
                wedged = await signal_failures.start_fragile(client, unique("nb02-fragile"), task_queue=w.task_queue,
                                                             raise_as="plain")
                healthy = await signal_failures.start_fragile(client, unique("nb02-fine"), task_queue=w.task_queue,
                                                              raise_as="plain")
                await healthy.signal(signal_handlers.FragileAccount.deposit, {"amount": 5})
                await until(lambda: healthy.query(signal_handlers.FragileAccount.balance), lambda b: b == 5)
                before = await room.survey(client, learner="dan", waiting_s=60)
                await signal_failures.bad_signal(client, wedged)
                after = await room.survey(client, learner="dan", waiting_s=60)
        return wedged.id, before, after

    wedged, before, after = run(scenario())
    assert not before.is_stuck("dan"), before.stuck_rows()
    assert [s.workflow_id for s in after.stuck] == [wedged], after.stuck_rows()
    assert "workflow task failed" in after.stuck[0].why


def test_a_clean_up_of_one_learner_ends_only_theirs_and_only_after_a_plan(run, client):
    async def scenario():
        opened = {}
        for name in ("eve", "eve-2"):
            with room.as_learner(name):
                opened[name] = await client.start_workflow(Counter.run, id=unique("nb00-counter"),
                                                           task_queue=unique("nb00"))
        await _listed(client, opened["eve-2"].id)
        by_prefix = await _count(client, 'WorkflowId STARTS_WITH "eve-" AND ExecutionStatus = "Running"')
        plan = await room.plan_cleanup(client, "Eve ")
        with room.as_learner("eve"):  # started after the plan was shown: not in it
            late = await client.start_workflow(Counter.run, id=unique("nb00-counter"), task_queue=unique("nb00"))
        ended = await room.cleanup(client, plan)
        statuses = {n: (await h.describe()).status.name for n, h in {**opened, "late": late}.items()}
        await until(lambda: room.survey(client, learner="eve"), lambda r: r.learners["eve"].open["nb00"] == 1)
        await late.terminate()
        await until(lambda: room.survey(client, learner="eve"), lambda r: not r.learners["eve"].open["nb00"])
        progress = (await room.survey(client, learner="eve")).learners["eve"].progress()
        await opened["eve-2"].terminate()
        return by_prefix, plan, ended, statuses, progress

    by_prefix, plan, ended, statuses, progress = run(scenario())
    assert by_prefix == 2, "the counterfactual: a plain prefix listing mixes eve-2's workflow into eve's"
    assert plan.target == "eve" and plan.describe() == "1 open workflow(s) of eve's"
    assert len(ended) == 1 and ended[0].startswith("eve-nb00-")
    assert progress == "nb00 ended", "terminated by the clean-up is not finished"
    assert statuses == {"eve": "TERMINATED", "eve-2": "RUNNING", "late": "RUNNING"}, statuses


def test_a_clean_up_of_a_learner_who_is_not_here_is_one_line_and_terminates_nothing(run, client):
    async def scenario():
        with room.as_learner("fay"):
            handle = await client.start_workflow(Counter.run, id=unique("nb00-counter"), task_queue=unique("nb00"))
        await _listed(client, handle.id)
        running = await _count(client, 'ExecutionStatus = "Running"')
        try:
            await room.plan_cleanup(client, "zed")
        except WorkbookError as err:
            message = str(err)
        after = await _count(client, 'ExecutionStatus = "Running"')
        await handle.terminate()
        return message, running, after

    message, running, after = run(scenario())
    assert message.startswith("No learner 'zed' on this server (here: ") and "fay" in message, message
    assert message.endswith("nothing terminated.") and "\n" not in message
    assert after == running > 0
    for bad in ("", "ann smith", "nb01", "x" * 33, "ann;drop"):
        with pytest.raises(ValueError, match="nothing terminated"):
            room.check_target(bad)


def test_a_clean_up_of_everyone_ends_every_learners_open_workflows_and_nothing_else(run, client):
    async def scenario():
        handles = []
        for name in ("gus", "hal"):
            with room.as_learner(name):
                handles.append(await client.start_workflow(Counter.run, id=unique("nb02-counter"),
                                                           task_queue=unique("nb02")))
        stranger = await client.start_workflow(Counter.run, id="not-the-workbooks-order-1", task_queue="elsewhere")
        await _listed(client, handles[-1].id)
        plan = await room.plan_cleanup(client, "everyone")
        ended = await room.cleanup(client, plan)
        left = await room.survey(client)
        status = (await stranger.describe()).status.name
        await stranger.terminate()
        return plan, ended, left, status, [h.id for h in handles]

    plan, ended, left, status, ids = run(scenario())
    assert set(ids) <= set(ended) and len(ended) == len(plan.workflows)
    assert all(sum(l.open.values()) == 0 for l in left.learners.values()), left.rows()
    assert status == "RUNNING" and left.others >= 1, "a workflow no learner made is left alone"
