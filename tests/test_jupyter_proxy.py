"""JupyterLab's one shared dev server, for real and without a browser: a real Jupyter server with the workbook
installed (its `jupyter_serverproxy_servers` entry point), under a JupyterHub-like base URL. Two kernels of it
connect to one dev server; the test reaches that server's gRPC address itself; the Web UI and its API answer
through Jupyter's URL (and only with Jupyter's token); and the dev server dies with the Jupyter server, whether
that is stopped or killed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tutorial import server
from tutorial.workshop import unique

BASE_URL = "/user/ada/"  # what JupyterHub gives a learner: every UI link must carry it
JUPYTER = Path(sys.executable).parent / "jupyter"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 to Jupyter's login page stays a 302


OPENER = urllib.request.build_opener(NoRedirect)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a parent that is gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Jupyter:
    """`jupyter server` in a folder of its own, with a token; kernels driven over their connection files."""

    def __init__(self, home: Path):
        self.home, self.token, self.port = home, secrets.token_hex(16), server.free_port()
        self.runtime = home / "runtime"
        self.kernels: list = []
        env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"),
                   JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(self.runtime),
                   XDG_CONFIG_HOME=str(home / "xdg-config"), XDG_CACHE_HOME=str(home / "xdg-cache"),
                   WORKBOOK_STATE_DIR=str(home / "state"), WORKBOOK_LEARNER="ada")
        for name in ("TEMPORAL_ADDRESS", server.SHARED_ENV):
            env.pop(name, None)
        self.log = home / "jupyter.log"
        self.process = subprocess.Popen(
            [str(JUPYTER), "server", "--no-browser", "--allow-root", f"--port={self.port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.base_url={BASE_URL}", f"--notebook-dir={home}"],
            env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"))
        self.root = f"http://127.0.0.1:{self.port}{BASE_URL}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                self.get("api/status")
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.3)
        self.stop()
        pytest.fail("the Jupyter server did not start: " + self.log.read_text()[-2000:])

    def get(self, path: str, *, token: bool = True) -> tuple[int, str]:
        request = urllib.request.Request(self.root + path)
        if token:
            request.add_header("Authorization", f"token {self.token}")
        try:
            with OPENER.open(request, timeout=20) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return err.code, ""

    def kernel(self):
        """A new kernel of this Jupyter server (as JupyterLab starts one), and a client on its connection file."""
        from jupyter_client import BlockingKernelClient

        request = urllib.request.Request(self.root + "api/kernels", data=b"{}", method="POST",
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            kernel_id = json.loads(response.read())["id"]
        client = BlockingKernelClient(connection_file=str(self.runtime / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        client.start_channels(hb=False)  # a missed heartbeat on a loaded machine is not a dead kernel
        client.wait_for_ready(timeout=60)
        self.kernels.append(client)
        return client

    def stop(self, how: int = signal.SIGTERM) -> None:
        for client in self.kernels:
            client.stop_channels()
        if self.process.poll() is None:
            self.process.send_signal(how)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def execute(kernel, code: str, timeout: float = 90) -> str:
    """Run `code` in the kernel; its printed output, or the error's text as an AssertionError."""
    out, errors = [], []

    def hook(msg):
        content = msg["content"]
        if msg["msg_type"] == "stream":
            out.append(content["text"])
        elif msg["msg_type"] == "error":
            errors.append("\n".join(content["traceback"]))

    reply = kernel.execute_interactive(code, timeout=timeout, output_hook=hook)
    text = re.sub(r"\x1b\[[0-9;]*m", "", "".join(out) + "\n".join(errors))
    assert reply["content"]["status"] == "ok", text[-3000:]
    return text


SHARED = """
import json, os
from tutorial import server
client = await server.connect()
info = server.server_info()
print(json.dumps({"address": info.address, "ui": info.ui_url, "pid": info.pid, "shared": info.shared,
                  "parent": os.getppid()}))
"""


def start_greeting(kernel, workflow_id: str) -> None:
    execute(kernel, f"from tutorial.workflows.greeting import Greet\n"
                    f"handle = await client.start_workflow(Greet.run, 'x', id={workflow_id!r}, task_queue='nobody')")


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    lab = Jupyter(tmp_path_factory.mktemp("jupyter-home"))
    yield lab
    lab.stop()


def kernel_view(kernel) -> dict:
    return json.loads(execute(kernel, SHARED).strip().splitlines()[-1])


def test_two_kernels_share_one_dev_server_whose_address_works(jupyter, run):
    first, second = jupyter.kernel(), jupyter.kernel()
    a, b = kernel_view(first), kernel_view(second)
    assert a["shared"] and a["address"] == b["address"] and a["pid"] == b["pid"], (a, b)
    assert a["parent"] == jupyter.process.pid  # how a kernel knows: its parent is the Jupyter server that set the env
    assert a["ui"] == BASE_URL + "temporal", a
    assert alive(a["pid"])
    ids = [unique("shared-a"), unique("shared-b")]
    start_greeting(first, ids[0])
    start_greeting(second, ids[1])

    from temporalio.client import Client

    outside = run(Client.connect(a["address"]))  # the gRPC address, from here: the one server has both workflows
    for workflow_id in ids:
        assert run(outside.get_workflow_handle(workflow_id).describe()).status.name == "RUNNING"
        run(outside.get_workflow_handle(workflow_id).terminate())


def test_the_web_ui_and_its_api_answer_through_jupyters_url(jupyter):
    kernel = jupyter.kernel()
    view = kernel_view(kernel)
    workflow_id = unique("shared-ui")
    start_greeting(kernel, workflow_id)
    status, page = jupyter.get("temporal/namespaces/default/workflows")
    assert status == 200 and f'base: "{BASE_URL}temporal"' in page, page[:500]  # the UI knows its public path
    query = urllib.parse.quote(f'WorkflowId="{workflow_id}"')
    status, body = jupyter.get(f"temporal/api/v1/namespaces/default/workflows?query={query}")
    assert status == 200 and workflow_id in body, body[:500]
    status, _ = jupyter.get("temporal/namespaces/default/workflows", token=False)
    assert status in (302, 403), "the UI must be behind Jupyter's login, like the notebooks"
    assert view["ui"] == BASE_URL + "temporal"
    status, servers = jupyter.get("server-proxy/servers-info")  # what JupyterLab's launcher shows
    entry = next(s for s in json.loads(servers)["server_processes"] if s["name"] == "temporal")
    assert entry["launcher_entry"]["title"] == "Temporal Web UI" and entry["launcher_entry"]["enabled"], entry


def test_a_kernel_of_another_parent_keeps_its_own_server(jupyter, tmp_path):
    """The environment reaches a script run from a JupyterLab terminal too; its parent is the shell, not Jupyter."""
    env = dict(os.environ, **{server.SHARED_ENV: json.dumps({
        "address": "127.0.0.1:1", "ui_url": "/temporal", "pid": 1, "log": "", "owner": jupyter.process.pid})})
    out = subprocess.run([sys.executable, "-c", "from tutorial import server; print(server.shared_server())"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "None", out.stderr[-1000:]


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_the_shared_server_ends_with_the_jupyter_server(tmp_path, how):
    lab = Jupyter(tmp_path)
    try:
        pid = kernel_view(lab.kernel())["pid"]
        assert alive(pid)
    finally:
        lab.stop(how)
    deadline = time.monotonic() + 20
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), f"the shared dev server (pid {pid}) outlived its Jupyter server ({how.name})"


def test_no_shared_server_when_the_configuration_names_one(tmp_path):
    """A workshop cluster configured: the notebooks use it, Jupyter starts no dev server (and says why in its log)."""
    env = dict(os.environ, TEMPORAL_ADDRESS="127.0.0.1:7233")
    env.pop(server.SHARED_ENV, None)
    code = ("from tutorial import jupyter_proxy, errors\n"
            "try:\n    jupyter_proxy.setup()\nexcept errors.WorkbookError as err:\n    print('refused:', err)\n"
            "import os; print(os.environ.get('WORKBOOK_SHARED_SERVER'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("refused: the Temporal environment configuration names a server"), out
    assert out.stdout.strip().endswith("None")
