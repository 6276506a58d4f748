"""A real JupyterHub room: hub users run the notebooks at the same time against one shared dev server.

JupyterHub from PyPI, its proxy (configurable-http-proxy) from the npm registry (`./workbook.sh test` installs it
into build/hub-proxy), a password checked by the hub's DummyAuthenticator and one JupyterLab single-user server
per user from SimpleLocalProcessSpawner. The dev server is the instructor's, started as `./workbook.sh serve`
starts it, its Web UI under /services/temporal-ui, which the hub routes to it (a JupyterHub service). The users'
servers get exactly the lines serve told the room, but no WORKBOOK_LEARNER: the learner is the hub user.
Each user's own server (reached through the hub's URL with that user's own token) runs notebooks 00 and 02 in
kernels it starts, cell by cell over the kernel's websocket, all users at once. Then: every cell passed, every
workflow on the server belongs to exactly one user and ran on that user's queues, the instructor's survey
(`tutorial.room`) tells the users apart (ann and ann-b too), each user's Web UI link answers from the hub's URL
and shows that user's workflow, and a hub user whose name cannot be a prefix is told so and sends nothing.
Everything lives in a temporary folder; the hub, its proxy, the single-user servers, their kernels and the dev
server are all gone at the end.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from tutorial import room, server

ROOT = Path(__file__).parent.parent
PROXY = ROOT / "build" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
USERS = ("ann", "ann-b", "chen", "dana")  # ann and ann-b: one name starts with the other's prefix
BAD_USER = "nb01"  # a valid hub user name, not a valid learner prefix (ids would read as notebook 01's)
UI_PATH = "/services/temporal-ui"  # the hub's route to the shared server's Web UI: learners reach it at the hub's URL
NOTEBOOKS = ("00_how_temporal_runs_your_code.ipynb", "02_signals_and_queries.ipynb")
PASSWORD = secrets.token_hex(8)
MARK = "WORKBOOK_HUB_TEST"  # in every process the hub starts for a user: how the end finds any left over
CELL_TIMEOUT_S = 300

pytestmark = [pytest.mark.full, pytest.mark.skipif(not PROXY.exists(), reason="configurable-http-proxy is not "
                                                   "installed (./workbook.sh test installs it into build/hub-proxy)")]


def _marked(token: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"{MARK}={token}".encode() in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def hub_port():
    return server.free_port()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, hub_port):
    """The instructor's shared server, started as `./workbook.sh serve` starts it, its Web UI under the path the
    hub routes to it (a JupyterHub service), the room told the hub's URL for it; stopped with Ctrl-C (SIGINT).
    Yields what serve told the room, and the UI's own port."""
    state = tmp_path_factory.mktemp("instructor")
    port, ui_port = server.free_port(), server.free_port()
    env = dict(os.environ, WORKBOOK_STATE_DIR=str(state), WORKBOOK_LEARNER="instructor")
    env.pop("TEMPORAL_ADDRESS", None)
    process = subprocess.Popen([sys.executable, "-m", "tutorial.serve", "--ip", "127.0.0.1", "--port", str(port),
                                "--ui-port", str(ui_port), "--ui-public-path", UI_PATH,
                                "--ui-url", f"http://127.0.0.1:{hub_port}{UI_PATH}"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    told = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "Ctrl-C" not in told:
        line = process.stdout.readline()
        if not line:
            break
        if "export " in line:
            key, _, value = line.strip().removeprefix("export ").partition("=")
            told[key] = value.split("#")[0].strip()
        elif "Ctrl-C" in line:
            told["Ctrl-C"] = line
    assert "TEMPORAL_ADDRESS" in told, f"serve did not tell the room where to connect: {told}"
    told.pop("Ctrl-C")
    yield told, ui_port
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    assert not server.port_in_use(port), "the shared dev server outlived serve"


class Hub:
    def __init__(self, base: str, api_token: str, folder: Path):
        self.base, self.api_token, self.folder = base, api_token, folder

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(f"{self.base}/hub/api{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": f"token {token or self.api_token}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text else {}
        except urllib.error.HTTPError as err:
            return err.code, {"message": err.read().decode()[:300]}


CONFIG = """
c = get_config()  # noqa
c.JupyterHub.bind_url = {bind!r}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = {db!r}
c.JupyterHub.cookie_secret_file = {secret!r}
c.JupyterHub.pid_file = {pid!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.api_url = {proxy_api!r}
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = set({users!r})
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {homes!r} + "/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root", "--ServerApp.log_level=WARN"]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.Spawner.environment = {environment!r}
c.JupyterHub.services = [{{"name": "room-test", "api_token": {api_token!r}}},
                         {{"name": "temporal-ui", "url": {ui!r}}}]  # the proxy routes /services/temporal-ui/ to it
c.JupyterHub.load_roles = [{{"name": "room-test", "services": ["room-test"],
                             "scopes": ["admin:users", "admin:servers", "tokens", "read:users"]}}]
"""


@pytest.fixture(scope="module")
def hub(shared, hub_port, tmp_path_factory):
    """JupyterHub on free ports, everything under a temporary folder; the users' servers get what serve told the
    room, but no WORKBOOK_LEARNER (the hub user is the learner); the hub routes UI_PATH to the Web UI."""
    told, ui_port = shared
    folder = tmp_path_factory.mktemp("hub")
    homes = folder / "homes"
    for user in (*USERS, BAD_USER):
        home = homes / user
        (home / "notebooks").mkdir(parents=True)
        for name in NOTEBOOKS:  # each learner's own copy, as a hub's home folder holds it
            (home / "notebooks" / name).write_bytes((ROOT / "notebooks" / name).read_bytes())
    token, api_token = uuid.uuid4().hex, secrets.token_hex(16)
    port, internal_port, proxy_api = hub_port, server.free_port(), server.free_port()
    environment = {**{k: v for k, v in told.items() if k != "WORKBOOK_LEARNER"}, MARK: token,
                   "WORKBOOK_TEST_SESSION": os.environ.get("WORKBOOK_TEST_SESSION", ""),
                   "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "MPLBACKEND": "agg",
                   "TMPDIR": str(folder / "tmp")}  # each learner's state folder too: $TMPDIR/temporal-workbook-<learner>
    (folder / "tmp").mkdir()
    config = folder / "jupyterhub_config.py"
    config.write_text(CONFIG.format(
        bind=f"http://127.0.0.1:{port}", hub_port=internal_port, ui=f"http://127.0.0.1:{ui_port}", db=f"sqlite:///{folder / 'hub.sqlite'}",
        secret=str(folder / "cookie_secret"), pid=str(folder / "hub.pid"), proxy=str(PROXY),
        proxy_api=f"http://127.0.0.1:{proxy_api}", proxy_pid=str(folder / "proxy.pid"), password=PASSWORD,
        users=[*USERS, BAD_USER], homes=str(homes), singleuser=str(Path(sys.executable).parent / "jupyterhub-singleuser"),
        environment=environment, api_token=api_token))
    env = dict(os.environ, HOME=str(folder), **{MARK: token})
    env.pop("WORKBOOK_LEARNER", None)
    log = open(folder / "hub.log", "wb")
    process = subprocess.Popen([str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)], cwd=folder,
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    the_hub = Hub(base, api_token, folder)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if the_hub.api("GET", "/")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("JupyterHub did not start: " + (folder / "hub.log").read_text()[-3000:])
    yield the_hub
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)  # the hub stops every user's server (cleanup_servers) and its proxy
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    deadline = time.monotonic() + 20
    left = _marked(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.3)
        left = _marked(token)
    if left:
        subprocess.run(["kill", "-9", *map(str, left)])
    print(f"hub, proxy and servers stopped in {time.monotonic() - stopping:.1f} s")
    assert not left, f"processes the hub started outlived it (killed now): {sorted(left)}"


def login(hub: Hub, user: str, password: str) -> int:
    """A learner's login form: the status the hub answers the POST with (302: in, 403: refused)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{hub.base}/hub/login", timeout=30).read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    poster = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    form = urllib.parse.urlencode({"username": user, "password": password, "_xsrf": xsrf}).encode()
    try:
        return poster.open(f"{hub.base}/hub/login?next=", data=form, timeout=30).status
    except urllib.error.HTTPError as err:
        return err.code


async def start_servers(hub: Hub, users) -> dict[str, str]:
    """Each user's single-user server, started through the hub's REST API (all at once); {user: own token}."""
    tokens = {}
    for user in users:
        status, reply = await asyncio.to_thread(hub.api, "POST", f"/users/{user}/server")
        assert status in (201, 202), f"{user}: {status} {reply}"
        status, reply = await asyncio.to_thread(hub.api, "POST", f"/users/{user}/tokens",
                                                {"note": "room test", "expires_in": 3600})
        assert status == 201, f"{user}'s token: {status} {reply}"
        tokens[user] = reply["token"]

    async def ready(user: str) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status, model = await asyncio.to_thread(hub.api, "GET", f"/users/{user}")
            if (model.get("servers", {}).get("", {}) or {}).get("ready"):
                return
            await asyncio.sleep(0.5)
        raise AssertionError(f"{user}'s server did not become ready:\n"
                             + (hub.folder / "hub.log").read_text()[-3000:])

    await asyncio.gather(*(ready(u) for u in users))
    return tokens


class Kernel:
    """A kernel in a user's own server, reached through the hub's URL: REST to start it, its websocket to run
    code (what JupyterLab does for a notebook)."""

    def __init__(self, hub: Hub, user: str, token: str):
        self.url = f"{hub.base}/user/{user}"
        self.headers = {"Authorization": f"token {token}"}
        self.id = None
        self.session = uuid.uuid4().hex
        self.ws = None

    async def http(self, method: str, path: str, body: dict | None = None):
        from tornado.httpclient import AsyncHTTPClient

        response = await AsyncHTTPClient().fetch(f"{self.url}{path}", method=method, headers=self.headers,
                                                 body=json.dumps(body) if body is not None else None,
                                                 request_timeout=60, raise_error=False,
                                                 allow_nonstandard_methods=True)
        return response.code, json.loads(response.body) if response.body else {}

    async def start(self, path: str = "notebooks") -> "Kernel":
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        code, model = await self.http("POST", "/api/kernels", {"name": "python3", "path": path})
        assert code == 201, f"{self.url}: kernel not started: {code} {model}"
        self.id = model["id"]
        ws_url = self.url.replace("http://", "ws://") + f"/api/kernels/{self.id}/channels?session_id={self.session}"
        self.ws = await websocket_connect(HTTPRequest(ws_url, headers=self.headers), max_message_size=64 << 20)
        await self.request("kernel_info_request", {}, timeout=120)
        return self

    async def request(self, msg_type: str, content: dict, *, timeout: float) -> dict:
        """Send one shell request; collect its outputs until the kernel is idle again."""
        msg_id = uuid.uuid4().hex
        await self.ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": msg_type, "session": self.session, "username": "test",
                       "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "version": "5.3"},
            "parent_header": {}, "metadata": {}, "content": content, "channel": "shell", "buffers": []}))
        result = {"stdout": "", "error": None, "reply": None, "idle": False}
        deadline = time.monotonic() + timeout
        while result["reply"] is None or not result["idle"]:
            raw = await asyncio.wait_for(self.ws.read_message(), max(0.1, deadline - time.monotonic()))
            if raw is None:
                raise AssertionError("the kernel's websocket closed")
            if isinstance(raw, bytes):
                continue  # binary frames carry widget buffers
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, body = msg["msg_type"], msg["content"]
            if msg["channel"] == "shell":
                result["reply"] = body
            elif kind == "stream" and body.get("name") == "stdout":
                result["stdout"] += body["text"]
            elif kind == "error":
                result["error"] = body
            elif kind == "status" and body.get("execution_state") == "idle":
                result["idle"] = True
        return result

    async def run(self, code: str, timeout: float = CELL_TIMEOUT_S) -> dict:
        return await self.request("execute_request", {"code": code, "silent": False, "store_history": True,
                                                       "user_expressions": {}, "allow_stdin": False,
                                                       "stop_on_error": True}, timeout=timeout)

    async def stop(self) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.id:
            code, _ = await self.http("DELETE", f"/api/kernels/{self.id}")
            assert code == 204, f"kernel {self.id} of {self.url} not shut down: {code}"


PROBE = """
import json, os
from tutorial import history, workshop
mine = [w.id async for w in client.list_workflows(f'WorkflowId STARTS_WITH "{workshop.learner()}-nb02-"')]
print(json.dumps({"learner": workshop.learner(), "hub_user": os.environ.get("JUPYTERHUB_USER"),
                  "prefix": os.environ.get("JUPYTERHUB_SERVICE_PREFIX"), "workflow": mine[0],
                  "link": history.ui_url(mine[0])}))
"""


async def learner_runs(hub: Hub, user: str, token: str) -> dict:
    """One learner: each notebook in a kernel of its own (read from the learner's own copy on their server),
    cell by cell; then what the last kernel says about the learner and a workflow's Web UI link."""
    report = {"user": user, "failures": [], "seconds": {}}
    for name in NOTEBOOKS:
        kernel = await Kernel(hub, user, token).start()
        try:
            code, model = await kernel.http("GET", f"/api/contents/notebooks/{name}?content=1")
            assert code == 200, f"{user} cannot read {name}: {code}"
            started = time.monotonic()
            for index, cell in enumerate(model["content"]["cells"]):
                if cell["cell_type"] != "code":
                    continue
                source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
                done = await kernel.run(source)
                if done["error"] or done["reply"].get("status") != "ok":
                    error = done["error"] or done["reply"]
                    report["failures"].append(f"{name} cell {index}: {error.get('ename')}: "
                                              f"{str(error.get('evalue'))[:500]}")
                    break
            report["seconds"][name] = time.monotonic() - started
            if name == NOTEBOOKS[-1] and not report["failures"]:
                report["probe"] = json.loads((await kernel.run(PROBE, 60))["stdout"].strip().splitlines()[-1])
        finally:
            await kernel.stop()
    return report


async def bad_name_is_refused(hub: Hub, token: str) -> dict:
    kernel = await Kernel(hub, BAD_USER, token).start()
    try:
        return await kernel.run("from tutorial.server import connect\nclient = await connect()", 60)
    finally:
        await kernel.stop()


def fetch(url: str, headers: dict | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, ""


def test_hub_users_run_notebooks_at_once_on_one_shared_server_and_stay_apart(run, shared, hub):
    told, ui_port = shared
    address, ui_url = told["TEMPORAL_ADDRESS"], told["TEMPORAL_UI_URL"]
    started = time.monotonic()
    assert login(hub, "ann", PASSWORD) == 302, "the hub refused the right password"
    assert login(hub, "ann", "wrong-" + PASSWORD) == 403, "the hub let a wrong password in"

    async def room_runs():
        tokens = await start_servers(hub, (*USERS, BAD_USER))
        spawned = time.monotonic() - started
        reports = await asyncio.gather(*(learner_runs(hub, u, tokens[u]) for u in USERS),
                                       bad_name_is_refused(hub, tokens[BAD_USER]))
        for user in (*USERS, BAD_USER):  # stop each server through the hub, as its owner's "Stop My Server" does
            status, _ = await asyncio.to_thread(hub.api, "DELETE", f"/users/{user}/server")
            assert status in (202, 204), f"{user}'s server did not stop: {status}"
        return spawned, reports[:-1], reports[-1], tokens

    spawned, reports, refused, tokens = run(room_runs())
    ran = time.monotonic() - started
    for report in reports:
        print(f"{report['user']}: " + ", ".join(f"{n[:2]} {s:.0f} s" for n, s in report["seconds"].items()))
    assert not [f for r in reports for f in r["failures"]], [(r["user"], r["failures"]) for r in reports]

    # Each kernel's learner is its hub user, unprompted (no WORKBOOK_LEARNER anywhere).
    for report in reports:
        probe = report["probe"]
        assert probe["learner"] == probe["hub_user"] == report["user"], probe

    # Each learner's files (state folder, SDK log) in a folder of their own, under the test's temporary folder.
    assert all((hub.folder / "tmp" / f"temporal-workbook-{u}").is_dir() for u in USERS)

    # Every workflow on the shared server is exactly one learner's and ran on that learner's queues.
    async def everything():
        client = await server.connect_to(server.ServerInfo(address=address, namespace="default", ui_url=ui_url,
                                                           embedded=False))
        listed = [(w.id, w.task_queue) async for w in client.list_workflows()]
        return listed, await room.survey(client), await room.survey(client, learner="ann")

    listed, survey, ann_only = run(everything())
    per_learner: dict[str, dict[str, int]] = {}
    for workflow_id, task_queue in listed:
        found = room.owner(workflow_id)
        assert found and found[0] in USERS, f"{workflow_id} is no hub user's"
        assert room.owner(task_queue) and room.owner(task_queue)[0] == found[0], \
            f"{workflow_id} ran on another learner's queue {task_queue}"
        per_learner.setdefault(found[0], {}).setdefault(found[1], 0)
        per_learner[found[0]][found[1]] += 1
    print(f"workflows per learner and notebook: {per_learner}")
    print(f"the instructor's survey: {survey.summary()}")
    for row in survey.stuck_rows()[:8]:
        print(f"  stuck after Run All: {row}")
    assert set(per_learner) == set(USERS) and all(set(n) == {"nb00", "nb02"} for n in per_learner.values())
    assert set(survey.learners) == set(USERS) and set(ann_only.learners) == {"ann"}, "ann-b counted as ann"
    assert not any(BAD_USER in w for w, _ in listed), "the refused user reached the server"

    # The bad name: one short line, raised before anything was sent.
    error = refused["error"]
    assert error and error["ename"] == "WorkbookError" and "cannot be your learner prefix" in error["evalue"], refused
    assert "\n" not in error["evalue"]

    # Each learner's Web UI link answers from the hub's URL, and the UI behind it shows that learner's workflow.
    for report in reports:
        probe, link, user = report["probe"], report["probe"]["link"], report["user"]
        url = hub.base + link if link.startswith("/") else link
        assert url.startswith(hub.base), f"{user}'s link {link} does not go through the hub"
        path = urllib.parse.urlparse(url).path
        assert path.startswith(UI_PATH + "/") or path.startswith(probe["prefix"] or f"/user/{user}/"), link
        status, page = fetch(url, {"Authorization": f"token {tokens[user]}"})
        assert status == 200 and "<html" in page.lower(), f"{user}'s link {link} answered {status}"
        api = f"{ui_url}/api/v1/namespaces/default/workflows/{urllib.parse.quote(probe['workflow'])}"
        status, body = fetch(api)
        assert status == 200 and probe["workflow"] in body, f"the UI behind the hub does not show {probe['workflow']}"
        print(f"{user}'s UI link: {link}")
    assert fetch(f"http://127.0.0.1:{ui_port}{UI_PATH}/")[0] == 200, "the UI's own port"
    print(f"the room took {ran:.0f} s: {spawned:.0f} s to log in and start {len(USERS) + 1} servers, then the notebooks")
