from tutorial import workshop


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


def test_empty_or_symbol_only_learner_falls_back(monkeypatch):
    monkeypatch.setenv("WORKBOOK_LEARNER", "!!!")
    assert workshop.learner() == "learner"


def test_on_jupyterhub_the_hub_user_is_the_learner_unless_one_is_set(monkeypatch):
    from tutorial import workshop

    monkeypatch.delenv("WORKBOOK_LEARNER", raising=False)
    monkeypatch.setenv("JUPYTERHUB_USER", "Ada.Lovelace")
    assert workshop.learner() == "ada-lovelace"
    monkeypatch.setenv("WORKBOOK_LEARNER", "instructor")
    assert workshop.learner() == "instructor"
