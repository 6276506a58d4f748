import tempfile

import pytest

from tutorial import server, workshop
from tutorial.errors import WorkbookError


def test_learner_prefix_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("WORKBOOK_LEARNER", "Alice Smith!")
    assert workshop.learner() == "alice-smith"
    assert workshop.scoped("nb00-hello") == "alice-smith-nb00-hello"
    assert workshop.scoped("alice-smith-nb00-hello") == "alice-smith-nb00-hello"


def test_two_learners_never_share_ids(monkeypatch):
    monkeypatch.setenv("WORKBOOK_LEARNER", "ann")
    ann = workshop.scoped("queue")
    monkeypatch.setenv("WORKBOOK_LEARNER", "bob")
    assert workshop.scoped("queue") != ann


def test_unique_names_differ_between_calls(monkeypatch):
    monkeypatch.setenv("WORKBOOK_LEARNER", "ann")
    a, b = workshop.unique("x"), workshop.unique("x")
    assert a != b and a.startswith("ann-x-")


def test_a_name_that_gives_no_usable_prefix_is_one_line_saying_what_to_set(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    for bad, why in (("!!!", "no letters or digits"), ("x" * 33, "longer than 32"), ("nb01", "tag 'nb01'"),
                     ("ann-setup-check", "tag 'setup-check'"), ("Bench", "tag 'bench'")):
        monkeypatch.setenv("WORKBOOK_LEARNER", bad)
        with pytest.raises(WorkbookError) as caught:
            workshop.learner()
        text = str(caught.value)
        assert why in text and "WORKBOOK_LEARNER" in text and "\n" not in text, text
    for fine in ("nb1", "nb001", "benchmark", "ann-nb", "x" * 32):  # a tag is a whole dash-separated word
        monkeypatch.setenv("WORKBOOK_LEARNER", fine)
        assert workshop.learner() == fine


def test_a_hub_user_name_that_is_not_a_valid_prefix_is_refused_before_anything_starts(monkeypatch, tmp_path):
    """JupyterHub allows user names the room could not tell apart ("日本", an e-mail cut at 32 characters):
    the learner is told to choose a name, and no server, state folder or workflow is made for them."""
    monkeypatch.delenv("WORKBOOK_LEARNER", raising=False)
    monkeypatch.delenv("WORKBOOK_STATE_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    for bad in ("日本", "a.very.long.name@university.example.edu", "nb03"):
        monkeypatch.setenv("JUPYTERHUB_USER", bad)
        with pytest.raises(WorkbookError, match="JupyterHub user name"):
            workshop.state_dir()
        with pytest.raises(WorkbookError, match="cannot be your learner prefix"):
            server.EmbeddedServer()  # what `connect()` makes first: it never got as far as a process
    assert list(tmp_path.iterdir()) == []


def test_an_odd_login_name_falls_back_to_the_neutral_prefix(monkeypatch):
    monkeypatch.delenv("WORKBOOK_LEARNER", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.setattr(workshop, "_user_name", lambda: "!!!")
    assert workshop.learner() == "learner"


def test_on_jupyterhub_the_hub_user_is_the_learner_unless_one_is_set(monkeypatch):
    from tutorial import workshop

    monkeypatch.delenv("WORKBOOK_LEARNER", raising=False)
    monkeypatch.setenv("JUPYTERHUB_USER", "Ada.Lovelace")
    assert workshop.learner() == "ada-lovelace"
    monkeypatch.setenv("WORKBOOK_LEARNER", "instructor")
    assert workshop.learner() == "instructor"


def test_heavy_cells_scale_down_only_in_a_room(monkeypatch):
    from tutorial.workshop import ROOM_ENV, in_a_room, sized

    monkeypatch.delenv(ROOM_ENV, raising=False)
    assert not in_a_room() and sized(300, 120) == 300  # alone: as today
    for off in ("0", "no", "false", ""):
        monkeypatch.setenv(ROOM_ENV, off)
        assert sized(300, 120) == 300
    monkeypatch.setenv(ROOM_ENV, "1")
    assert in_a_room() and sized(300, 120) == 120
