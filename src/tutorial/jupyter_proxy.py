"""One Temporal dev server per Jupyter server, shared by all its notebooks, its Web UI under Jupyter's own URL.

jupyter-server-proxy calls `setup()` (entry point `jupyter_serverproxy_servers` named `temporal`, see
pyproject.toml) once, inside the Jupyter server process, while that process loads its extensions. `setup()`
starts the dev server there and then: the proxy's own launcher would start a process only on the first web
request to its URL, but a kernel needs the gRPC port before anybody opens the UI, and a kernel cannot
authenticate to Jupyter to trigger it. The dev server serves its Web UI under `<base_url>temporal`
(`--ui-public-path`), and the proxy forwards that path, unchanged, from Jupyter's URL: whatever host and
prefix the browser reached JupyterLab at (localhost, a Codespaces forwarded host, Binder's or JupyterHub's
`/user/<name>/`), a link that is just the path works.

Kernels learn where the server is from `server.SHARED_ENV`, which `setup()` puts in the Jupyter server's
environment: every kernel it starts inherits it (`server.shared_server()` takes it only when its parent is that
Jupyter server, so nbval and scripts keep a server of their own). The dev server dies with the Jupyter server:
atexit on a normal exit, and Linux's parent-death signal when it is killed.
"""

from __future__ import annotations

import json
import os

from . import connection, server
from .errors import WorkbookError
from .workshop import state_dir

NAME = "temporal"  # the proxy's name: the UI is at <base_url>temporal/
_shared: server.EmbeddedServer | None = None


def jupyter_base_url() -> str:
    """The running Jupyter server's base URL ("/" locally, "/user/<name>/" on JupyterHub), ending in "/"."""
    base = None
    try:
        from jupyter_server.serverapp import ServerApp

        if ServerApp.initialized():
            base = ServerApp.instance().base_url
    except ImportError:
        pass
    stripped = (base or os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "").strip("/")
    return f"/{stripped}/" if stripped else "/"


def start_shared(base_url: str) -> server.ServerInfo:
    """Start (once per process) the dev server with its UI under `base_url` + NAME, and publish it to kernels."""
    global _shared
    if _shared is None or not _shared.running:
        _shared = server.EmbeddedServer(ui_public_path=base_url + NAME,
                                        log_path=state_dir() / "jupyter-shared-server.log")
        _shared.start_blocking()
    info = _shared.info
    os.environ[server.SHARED_ENV] = json.dumps({
        "address": info.address, "ui_url": base_url + NAME, "ui_local_url": info.ui_url,
        "pid": info.pid, "log": str(info.log_path), "owner": os.getpid(),
    })
    return info


def setup() -> dict:
    """jupyter-server-proxy's entry point: the running dev server's UI port, proxied with its full path."""
    if connection.configured():
        raise WorkbookError("the Temporal environment configuration names a server (TEMPORAL_ADDRESS or a "
                            "profile): the notebooks use it, so no shared dev server is started")
    start_shared(jupyter_base_url())
    return {
        "command": [],  # already running, owned by this process: the proxy only forwards
        "port": _shared.ui_port,
        "absolute_url": True,  # the UI serves under its public path, so it gets the path unchanged
        "new_browser_tab": True,
        "launcher_entry": {"title": "Temporal Web UI", "path_info": NAME + "/"},
    }
