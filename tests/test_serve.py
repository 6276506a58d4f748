"""The instructor's shared server (`./workbook.sh serve`): it listens where asked, prints what to tell the room,
keeps its workflows in a file, stops on Ctrl-C with its dev server; an address it cannot bind is one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from temporalio.client import Client

from tutorial import server
from tutorial.workflows.greeting import Greet, compose_greeting
from tutorial.worker import WorkerController


def serve(*args: str, state_dir) -> subprocess.Popen:
    env = dict(os.environ, WORKBOOK_STATE_DIR=str(state_dir))
    env.pop("TEMPORAL_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "tutorial.serve", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_it_serves_the_room_and_stops_on_ctrl_c(run, tmp_path):
    port, ui_port = server.free_port(), server.free_port()
    process = serve("--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port), "--advertise", "room-host",
                    state_dir=tmp_path)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("Ctrl-C" in line for line in lines):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
    try:
        text = "\n".join(lines)
        assert f"export TEMPORAL_ADDRESS=room-host:{port}" in text, text
        assert f"export TEMPORAL_UI_URL=http://room-host:{ui_port}" in text and "WORKBOOK_LEARNER" in text
        assert "export WORKBOOK_ROOM=1" in text
        assert (tmp_path / "shared-server.sqlite").exists() or "shared-server.sqlite" in text

        async def a_learner():
            client = await Client.connect(f"127.0.0.1:{port}")
            async with WorkerController(client, task_queue="room-test", workflows=[Greet],
                                        activities=[compose_greeting]) as w:
                return await client.execute_workflow(Greet.run, "room", id=f"room-{port}", task_queue=w.task_queue)

        assert run(a_learner()) == "Hello, room!"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
    assert not server.port_in_use(port), "the dev server stopped with the command"


def test_an_address_it_cannot_bind_is_one_line(tmp_path):
    done = serve("--ip", "203.0.113.7", "--port", str(server.free_port()), state_dir=tmp_path)
    out, err = done.communicate(timeout=60)
    assert done.returncode == 2 and err.startswith("serve: error: Cannot listen on 203.0.113.7:"), err
    assert len(err.strip().splitlines()) == 1


def test_a_port_in_use_is_one_line_and_nothing_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve("--ip", "127.0.0.1", "--port", str(port), state_dir=tmp_path)
        out, err = done.communicate(timeout=60)
    assert done.returncode == 2 and f"Cannot listen on 127.0.0.1:{port}" in err and "in use" in err, err


def test_ports_and_ui_addresses_the_room_cannot_use_are_one_line_and_nothing_starts(tmp_path):
    for args, says in ((["--port", "70000"], "--port 70000 is not a port"), (["--ui-port", "0"], "--ui-port 0 is not"),
                       (["--port", "7300", "--ui-port", "7300"], "both 7300"),
                       (["--ui-public-path", "services/ui"], "must be a path such as"),
                       (["--ui-url", "hub.example/ui"], "http:// or https://")):
        done = serve("--ip", "127.0.0.1", *args, state_dir=tmp_path)
        out, err = done.communicate(timeout=60)
        assert done.returncode == 2 and err.startswith("serve: error: ") and says in err, err
        assert len(err.strip().splitlines()) == 1 and not out
    assert not (tmp_path / "shared-server.sqlite").exists()


def test_a_kill_stops_it_as_ctrl_c_does(tmp_path):
    port, ui_port = server.free_port(), server.free_port()
    process = serve("--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port), state_dir=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "Ctrl-C" not in (process.stdout.readline() or "Ctrl-C"):
        pass
    assert server.port_in_use(port), "serve did not start"
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0 and "stopped" in out, (out, err)
    assert not server.port_in_use(port), "the dev server outlived a killed serve"


def test_the_web_ui_under_a_path_and_the_address_the_room_is_told(tmp_path):
    """Behind JupyterHub the UI is served under the path the hub routes to it, and the room is told the hub's URL."""
    port, ui_port = server.free_port(), server.free_port()
    process = serve("--ip", "127.0.0.1", "--port", str(port), "--ui-port", str(ui_port), "--ui-public-path",
                    "/services/temporal-ui", "--ui-url", "https://hub.example/services/temporal-ui", state_dir=tmp_path)
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any("Ctrl-C" in line for line in lines):
        lines.append(process.stdout.readline() or "Ctrl-C (ended)")
    try:
        assert any("export TEMPORAL_UI_URL=https://hub.example/services/temporal-ui" in line for line in lines), lines
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/services/temporal-ui/namespaces/default/workflows",
                                    timeout=10) as page:
            assert page.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
