"""The room benchmark, `tutorial.room_bench`: learners are real kernels running a notebook at once against one
dev server; a failing learner is counted, the server's RPCs and the events written are read from the server."""

from __future__ import annotations

import nbformat
import pytest

from tutorial import room_bench as rb
from tutorial.errors import WorkbookError

pytestmark = pytest.mark.full

ONE_WORKFLOW = """
from tutorial import server
from tutorial.worker import WorkerController
from tutorial.workflows.greeting import Greet, compose_greeting
from tutorial.workshop import unique
client = await server.connect()
async with WorkerController(client, task_queue=unique("nb00-room"), workflows=[Greet], activities=[compose_greeting]) as w:
    assert await client.execute_workflow(Greet.run, "room", id=unique("nb00-greet"), task_queue=w.task_queue) == "Hello, room!"
"""


def notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_two_learners_at_once_are_measured_and_a_failing_one_is_counted(run, tmp_path):
    ok = notebook(tmp_path / "00_ok.ipynb", ONE_WORKFLOW)
    broken = notebook(tmp_path / "01_broken.ipynb", "assert 1 + 1 == 3, 'this learner is stuck'")
    rooms = run(rb.measure([ok, broken], [1, 2], tmp_path / "out", say=lambda line: None))
    by = {(r.notebook[:2], r.n): r for r in rooms}
    assert by["00", 2].failures == 0 and len(by["00", 2].learners) == 2
    assert by["01", 2].failures == 2 and "this learner is stuck" in by["01", 2].learners[0].error  # counterfactual
    per_learner = by["00", 2].events / 2
    assert per_learner == by["00", 1].events  # each learner's own workflow, nobody else's: the prefixes keep them apart
    assert per_learner >= 11  # one workflow with one activity writes at least 11 events
    assert by["00", 2].rpcs > by["00", 1].rpcs > 0 and by["00", 2].peak_events_s > 0
    table = rb.rows(rooms)
    assert table[0]["p50 vs alone"] == "1.00x" and table[1]["learners"] == 2
    assert (tmp_path / "out" / "room.csv").exists() is False  # measure() only measures; write() writes
    assert rb.write(rooms, tmp_path / "out").read_text().startswith("notebook,learners")


def test_bad_input_gets_one_line():
    with pytest.raises(WorkbookError, match="whole numbers"):
        rb.learner_counts("1,two")
    with pytest.raises(WorkbookError, match="between 1 and 50"):
        rb.learner_counts("0")
    with pytest.raises(WorkbookError, match="No notebook numbered 42"):
        rb.notebooks("00,42")
    assert [p.name[:2] for p in rb.notebooks("2,00")] == ["00", "02"]
