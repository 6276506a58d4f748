"""Every `temporal` command the notebooks print does what the SDK call above it did, against the real dev server.

For each kind of call (start, signal, query, update, signal-with-start, update-with-start, describe, show,
terminate) the test makes the call with the SDK through a recording client, runs the command it generated (in
bash, as a learner would paste it), and compares the effect: the same state change, the same history events,
the same answer. A counterfactual per comparison: a command generated wrongly (another workflow id, another
input) is caught by the same comparison. Then the connection flags: an API key and TLS without the secret in the
line, and the commands run for real through nginx in front of the dev server (API key, mTLS).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from tutorial import cli_equivalents as cli
from tutorial import entity_signals as es
from tutorial import entity_updates as eu
from tutorial import connection, history, server
from tutorial.errors import WorkbookError
from tutorial.workflows import update_account
from tutorial.workflows.greeting import Counter, Greet, compose_greeting
from tutorial.workflows.signal_account import ACTIVITIES, WORKFLOWS, SignalAccount, payload
from tutorial.workflows.update_account import UpdateAccount
from tutorial.workshop import unique

ROOT = Path(__file__).parent.parent
JSON = DataConverter.default.payload_converter


@pytest.fixture(scope="module")
def rec(client):
    """The session's client, recording: what a notebook gets from `cli.recording(client)`."""
    return cli.recording(client)


@pytest.fixture(scope="module")
def worker(started_worker, rec):
    with started_worker("test-cli", [Greet, Counter, *update_account.WORKFLOWS, *WORKFLOWS],
                        [compose_greeting, *update_account.ACTIVITIES, *ACTIVITIES]) as w:
        yield w


def latest(rec, kind) -> cli.Command:
    [command] = cli.latest(kind, client=rec)
    return command


def ran(run, command: cli.Command):
    """Run the printed line; its JSON answer (a failed command fails the test with its one line)."""
    return run(command.json())


async def started_as(handle) -> tuple:
    """What the first event says was started: type, task queue, input values."""
    first = (await handle.fetch_history()).events[0].workflow_execution_started_event_attributes
    return first.workflow_type.name, first.task_queue.name, history.decode_payloads(first.input)


def pinned(rec, handle):
    """The handle's first run (a handle from `start_workflow` follows the id to its latest run)."""
    return rec.get_workflow_handle(handle.id, run_id=handle.result_run_id)


def no_tasks(types: list[str]) -> list[str]:
    """Event types without the workflow-task bookkeeping (how many tasks a burst takes is the worker's affair)."""
    return [t for t in types if not t.startswith("WorkflowTask")]


async def signals_in(handle) -> list[tuple[str, list]]:
    events = (await handle.fetch_history()).events
    return [(e.workflow_execution_signaled_event_attributes.signal_name,
             history.decode_payloads(e.workflow_execution_signaled_event_attributes.input))
            for e in events if e.HasField("workflow_execution_signaled_event_attributes")]


# ---------------------------------------------------------------- start


def test_start_runs_the_same_workflow_with_the_same_input(run, rec, worker):
    handle = run(rec.start_workflow(Greet.run, "learner", id=unique("cli-greet"), task_queue=worker.task_queue))
    sdk_result = run(handle.result())
    command = latest(rec, "start")
    assert command.line.startswith("temporal workflow start --address ") and "--input '\"learner\"'" in command.line
    answer = ran(run, command)  # the same id: Greet has completed, so the id may start again
    again = rec.get_workflow_handle(handle.id, run_id=answer["runId"])
    assert answer["runId"] != handle.result_run_id
    assert run(again.result()) == sdk_result == "Hello, learner!"
    first = pinned(rec, handle)
    assert run(started_as(again)) == run(started_as(first)) == ("Greet", worker.task_queue, ["learner"])
    assert run(history.event_types(again)) == run(history.event_types(first))


def test_counterfactual_a_start_with_another_input_is_caught(run, rec, worker):
    handle = run(rec.start_workflow(Greet.run, "learner", id=unique("cli-greet"), task_queue=worker.task_queue))
    run(handle.result())
    wrong = latest(rec, "start").with_value("--input", '"someone else"')
    answer = ran(run, wrong)
    again = rec.get_workflow_handle(handle.id, run_id=answer["runId"])
    first = pinned(rec, handle)
    assert run(again.result()) != run(first.result())
    assert run(started_as(again)) != run(started_as(first))


# ---------------------------------------------------------------- signal and query


def open_counter(run, rec, worker):
    return run(rec.start_workflow(Counter.run, id=unique("cli-counter"), task_queue=worker.task_queue))


def signal_effect(run, handle, send) -> tuple[int, list]:
    """What one signal did: how much the counter moved, and which signal events the history gained."""
    before, signals = run(handle.query(Counter.current)), run(signals_in(handle))
    send()
    return run(handle.query(Counter.current)) - before, run(signals_in(handle))[len(signals):]


def test_signal_arrives_as_the_sdk_signal_did(run, rec, worker):
    counter = open_counter(run, rec, worker)
    by_sdk = signal_effect(run, counter, lambda: run(counter.signal(Counter.add, 1)))
    command = latest(rec, "signal")
    by_cli = signal_effect(run, counter, lambda: ran(run, command))
    assert by_sdk == by_cli == (1, [("add", [1])])
    run(counter.signal(Counter.finish))


def test_counterfactual_a_signal_with_another_workflow_id_or_input_is_caught(run, rec, worker):
    counter, other = open_counter(run, rec, worker), open_counter(run, rec, worker)
    by_sdk = signal_effect(run, counter, lambda: run(counter.signal(Counter.add, 1)))
    command = latest(rec, "signal")
    elsewhere = signal_effect(run, counter, lambda: ran(run, command.with_value("--workflow-id", other.id)))
    more = signal_effect(run, counter, lambda: ran(run, command.with_value("--input", "5")))
    assert elsewhere != by_sdk and elsewhere == (0, [])  # the signal went to the other counter
    assert more != by_sdk and more == (5, [("add", [5])])
    for handle in (counter, other):
        run(handle.signal(Counter.finish))


def test_query_answers_what_the_sdk_query_answered(run, rec, worker):
    account = run(es.send(rec, unique("cli-alice"), "deposit", payload(100, "open-1"), task_queue=worker.task_queue))
    state = run(account.query(SignalAccount.state))  # a dataclass, read back from its JSON
    by_cli = ran(run, latest(rec, "query"))["queryResult"]
    assert by_cli == [json.loads(JSON.to_payloads([state])[0].data)] and by_cli[0]["balance"] == 100
    outcome = run(account.query(SignalAccount.outcome, "open-1"))  # a query with an argument
    command = latest(rec, "query")
    assert ran(run, command)["queryResult"] == [outcome] and outcome.startswith("applied")
    assert ran(run, command.with_value("--input", '"no-such-request"'))["queryResult"] != [outcome]  # caught
    run(account.signal(SignalAccount.close))


# ---------------------------------------------------------------- signal-with-start


def test_signal_with_start_starts_and_signals_as_the_sdk_did(run, rec, worker):
    account_id = unique("cli-bob")
    sdk = run(es.send(rec, account_id, "deposit", payload(40, "open-1"), task_queue=worker.task_queue))
    sdk_state = run(sdk.query(SignalAccount.state))
    command = latest(rec, "signal-with-start")
    assert "--id-reuse-policy RejectDuplicate" in command.line and "--signal-name deposit" in command.line
    fresh = command.with_value("--workflow-id", unique("cli-bob-by-cli"))  # a start needs an id not yet open
    answer = ran(run, fresh)
    by_cli = rec.get_workflow_handle(answer["workflowId"])
    cli_state = run(by_cli.query(SignalAccount.state))
    assert dataclasses.asdict(cli_state) == dataclasses.asdict(sdk_state)  # the same config, the same deposit
    assert run(started_as(by_cli)) == run(started_as(sdk)) and run(signals_in(by_cli)) == run(signals_in(sdk))
    assert no_tasks(run(history.event_types(by_cli))) == no_tasks(run(history.event_types(sdk)))
    wrong = command.with_value("--workflow-id", unique("cli-bob-wrong")).with_value("--signal-input", '{"amount": 41}')
    wrong_state = run(rec.get_workflow_handle(ran(run, wrong)["workflowId"]).query(SignalAccount.state))
    assert dataclasses.asdict(wrong_state) != dataclasses.asdict(sdk_state)  # the counterfactual: caught
    for handle in (sdk, by_cli, rec.get_workflow_handle(wrong.value("--workflow-id"))):
        run(handle.signal(SignalAccount.close))
    closed = ran_fails(run, fresh)  # RejectDuplicate came along: a closed account stays closed, as with the SDK
    assert "already" in closed.lower(), closed


def ran_fails(run, command: cli.Command) -> str:
    code, out, err = run(command.run())
    assert code != 0, f"expected the command to fail: {out}"
    return err or out


# ---------------------------------------------------------------- update and update-with-start


def update_effect(run, handle, send) -> tuple[int, list]:
    """What one update did: how far the balance moved, and which non-task events the history gained."""
    before, types = run(handle.query(UpdateAccount.account_state)).balance, run(history.event_types(handle))
    send()
    after = run(handle.query(UpdateAccount.account_state)).balance
    return after - before, no_tasks(run(history.event_types(handle))[len(types):])


def test_update_changes_and_answers_as_the_sdk_update_did(run, rec, worker):
    _, account = run(eu.deposit_with_start(rec, unique("cli-ada"), 100, worker.task_queue))
    answers = {}
    deposit = account.execute_update(UpdateAccount.deposit, 10)
    by_sdk = update_effect(run, account, lambda: answers.update(sdk=run(deposit)))
    command = latest(rec, "update")
    assert command.line.split()[:4] == ["temporal", "workflow", "update", "execute"]
    by_cli = update_effect(run, account, lambda: answers.update(cli=ran(run, command)["result"]))
    assert by_sdk == by_cli == (10, ["WorkflowExecutionUpdateAccepted", "WorkflowExecutionUpdateCompleted"])
    assert answers == {"sdk": 110, "cli": 120}  # each returned the balance it produced
    more = update_effect(run, account, lambda: ran(run, command.with_value("--input", "11")))
    assert more != by_sdk  # the counterfactual: another amount is caught
    run(account.execute_update(UpdateAccount.close))


def test_update_with_start_opens_once_and_answers_as_the_sdk_did(run, rec, worker):
    account_id = unique("cli-eve")
    balance, account = run(eu.deposit_with_start(rec, account_id, 100, worker.task_queue))
    command = latest(rec, "update-with-start")
    assert command.line.split()[:3] == ["temporal", "workflow", "execute-update-with-start"]
    assert "--id-conflict-policy UseExisting" in command.line
    again = ran(run, command)  # the same account: UseExisting, so the deposit lands in the running workflow
    assert (balance, again["updateResult"]) == (100, 200) and again["runId"] == account.result_run_id
    assert run(history.event_types(account)).count("WorkflowExecutionStarted") == 1
    fresh = ran(run, command.with_value("--workflow-id", eu.workflow_id(unique("cli-eve-by-cli"))))
    by_cli = rec.get_workflow_handle(fresh["workflowId"])
    assert fresh["updateResult"] == balance  # a fresh account: opened, and the first deposit answered
    assert run(started_as(by_cli)) == run(started_as(account))
    wrong = ran(run, command.with_value("--workflow-id", eu.workflow_id(unique("cli-eve-wrong")))
                .with_value("--update-input", "99"))
    assert wrong["updateResult"] != balance  # the counterfactual: caught
    for workflow_id in (account.id, fresh["workflowId"], wrong["workflowId"]):
        run(rec.get_workflow_handle(workflow_id).execute_update(UpdateAccount.close))


# ---------------------------------------------------------------- describe, show, terminate


def described(answer: dict) -> tuple:
    info = answer["workflowExecutionInfo"]
    return (info["type"]["name"], info["status"].removeprefix("WORKFLOW_EXECUTION_STATUS_"), info["taskQueue"],
            int(info["historyLength"]))


def test_describe_and_show_read_what_the_sdk_read(run, rec, worker):
    handle = run(rec.start_workflow(Greet.run, "reader", id=unique("cli-read"), task_queue=worker.task_queue))
    run(handle.result())
    sdk = run(handle.describe())
    assert described(ran(run, latest(rec, "describe"))) == (
        sdk.workflow_type, sdk.status.name, sdk.task_queue, sdk.history_length) == ("Greet", "COMPLETED",
                                                                                     worker.task_queue, 11)
    sdk_history = run(handle.fetch_history())
    shown = ran(run, latest(rec, "show"))
    assert WorkflowHistory.from_json(handle.id, shown).events == sdk_history.events  # event for event
    other = run(rec.start_workflow(Greet.run, "someone", id=unique("cli-read"), task_queue=worker.task_queue))
    run(other.result())
    shown_other = ran(run, latest(rec, "show").with_value("--workflow-id", other.id))
    assert WorkflowHistory.from_json(other.id, shown_other).events != sdk_history.events  # caught


def test_terminate_ends_the_workflow_as_the_sdk_did(run, rec, worker):
    first, second = open_counter(run, rec, worker), open_counter(run, rec, worker)
    run(first.terminate(reason="closed by an operator"))
    command = latest(rec, "terminate")
    assert "--reason 'closed by an operator'" in command.line
    code, out, err = run(command.with_value("--workflow-id", second.id).run())
    assert code == 0, err

    async def ending(handle):
        last = (await handle.fetch_history()).events[-1]
        return (await handle.describe()).status.name, last.workflow_execution_terminated_event_attributes.reason

    assert run(ending(first)) == run(ending(second)) == ("TERMINATED", "closed by an operator")
    assert "already completed" in ran_fails(run, command)  # the first one is closed: terminating it again fails


def test_cancel_asks_the_workflow_to_stop_as_the_sdk_did(run, rec, worker):
    first, second, third = (run(es.send(rec, unique("cli-grace"), "deposit", payload(20), task_queue=worker.task_queue))
                            for _ in range(3))
    for handle in (first, second, third):
        run(handle.query(SignalAccount.balance))  # its first task is done
    run(first.cancel())
    command = latest(rec, "cancel")
    assert run(command.with_value("--workflow-id", second.id).run())[0] == 0

    async def ending(handle):
        result = await handle.result()
        return (await handle.describe()).status.name, result.closed_reason, no_tasks(await history.event_types(handle))

    by_sdk = run(ending(first))
    assert by_sdk == run(ending(second)) and by_sdk[0] == "COMPLETED"
    assert "WorkflowExecutionCancelRequested" in by_sdk[2]
    run(third.signal(SignalAccount.close, "closed, not cancelled"))
    assert run(ending(third)) != by_sdk  # the comparison tells another ending apart


# ---------------------------------------------------------------- what a line looks like


def test_the_embedded_server_line_names_its_address_and_namespace(rec, client):
    info = server.server_info()
    assert cli.connection_words(info) == ["--address", info.address, "--namespace", info.namespace]


def test_echo_prints_one_copyable_line_per_call_and_bad_kinds_are_one_line(run, rec, worker, capsys):
    counter = open_counter(run, rec, worker)
    run(counter.signal(Counter.add, 2))
    run(counter.query(Counter.current))
    cli.echo("signal", "query", client=rec)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("$ temporal workflow ") for line in lines)
    assert lines[0].endswith(f"--workflow-id {counter.id} --name add --input 2")
    with pytest.raises(ValueError, match="kind must be one of"):
        cli.echo("sginal", client=rec)
    with pytest.raises(WorkbookError, match="no start call recorded yet"):
        cli.latest("start", client=cli.recording(cli.Client(**{**rec.config(), "interceptors": []})))
    assert cli.recording(rec) is rec  # a cell that runs twice does not stack interceptors
    run(counter.signal(Counter.finish))


def test_an_argument_with_no_json_form_is_one_line():
    with pytest.raises(WorkbookError, match="no JSON form"):
        cli.input_words("--input", [b"raw bytes"])


@pytest.fixture()
def secured_env(monkeypatch, tmp_path):
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_TLS",
                 "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME", "TEMPORAL_TLS_CLIENT_CERT_PATH",
                 "TEMPORAL_TLS_CLIENT_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "none.toml"))
    return monkeypatch


def external(address="temporal.example:7233", **connect_args) -> server.ServerInfo:
    return server.ServerInfo(address=address, namespace="workshop", ui_url=None, embedded=False,
                             connect_args=connect_args)


def test_an_api_key_is_a_variable_in_the_line_never_the_key(secured_env):
    secured_env.setenv("TEMPORAL_API_KEY", "secret-key-123")
    words = cli.connection_words(external(api_key="secret-key-123", tls=True))
    line = cli.Command("describe", ("temporal", *words)).line
    assert line == 'temporal --address temporal.example:7233 --namespace workshop --tls --api-key "$TEMPORAL_API_KEY"'


def test_a_key_from_a_profile_names_the_profile_and_tls_paths_are_given(secured_env, tmp_path):
    config = tmp_path / "temporal.toml"
    config.write_text(f'[profile.room]\naddress = "room.example:7233"\napi_key = "secret-key-123"\n'
                      f'[profile.room.tls]\nserver_ca_cert_path = "{tmp_path / "ca.pem"}"\n')
    secured_env.setenv("TEMPORAL_CONFIG_FILE", str(config))
    secured_env.setenv("TEMPORAL_PROFILE", "room")
    line = cli.Command("describe", ("temporal", *cli.connection_words(
        external("room.example:7233", api_key="secret-key-123", tls=True)))).line
    assert "secret-key-123" not in line
    assert f"--tls --tls-ca-path {tmp_path / 'ca.pem'}" in line and f"--profile room --config-file {config}" in line


# ---------------------------------------------------------------- for real, through a secured endpoint


def _secured():
    spec = importlib.util.spec_from_file_location("secured_endpoints", ROOT / "tests" / "test_secured_endpoints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def proxies(client, tmp_path_factory):
    secured = _secured()
    if not Path(secured.NGINX).exists():
        pytest.skip("Debian nginx is not installed (./workbook.sh test installs it)")
    certs = secured.make_certificates(tmp_path_factory.mktemp("cli-certs"))
    upstream = server.server_info().address
    made = {mode: secured.Proxy(tmp_path_factory.mktemp(f"cli-nginx-{mode}"), certs, upstream, mode=mode)
            for mode in ("api_key", "mtls")}
    yield secured, certs, made
    for proxy in made.values():
        proxy.stop()


@pytest.mark.parametrize("mode", ["api_key", "mtls"])
def test_a_generated_command_goes_through_a_secured_endpoint(run, rec, worker, proxies, secured_env, mode):
    secured, certs, made = proxies
    settings = secured.settings(made[mode], certs)
    for name, value in settings.items():
        secured_env.setenv(name, value)
    target = connection.configured()
    info = server.ServerInfo(address=target.address, namespace=target.namespace, ui_url=None, embedded=False,
                             connect_args=target.connect_args, how=target.how)
    handle = run(rec.start_workflow(Greet.run, "secured", id=unique("cli-secured"), task_queue=worker.task_queue))
    run(handle.result())

    def describe(words) -> cli.Command:
        return cli.Command("describe", ("temporal", "workflow", "describe", *words, "--workflow-id", handle.id))

    line = describe(cli.connection_words(info))
    assert secured.KEY not in line.line and "--tls" in line.line
    terminal = {name: None for name in settings}  # a terminal with only the key exported, nothing else
    if mode == "api_key":
        terminal["TEMPORAL_API_KEY"] = secured.KEY
    answer = run(line.json(env=terminal))
    assert described(answer)[:2] == ("Greet", "COMPLETED")
    plain = describe(cli.connection_words(server.server_info())).with_value("--address", made[mode].address)
    code, _, err = run(plain.run(env=terminal))
    assert code != 0 and err  # the counterfactual: without the TLS and key flags the endpoint refuses the command


# ---------------------------------------------------------------- the notebooks


def test_the_notebooks_show_a_line_under_every_kind_of_call():
    """Each notebook that makes calls records them, and between them every kind gets its line."""
    import ast

    import nbformat

    shown = set()
    for path in sorted((ROOT / "notebooks").glob("0[01235]_*.ipynb")):
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert "client = cli.recording(client)" in code, path.name
        for node in ast.walk(ast.parse(code.replace("await ", ""))):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "cli.echo":
                shown |= {arg.value for arg in node.args}
    assert shown == set(cli.KINDS), set(cli.KINDS) - shown
