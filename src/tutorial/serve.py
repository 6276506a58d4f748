"""The instructor's shared server, without Docker: `./workbook.sh serve` (or `python -m tutorial.serve`).

One persistent dev server (its SQLite file in the state folder, so a restart keeps the room's workflows) with
its Web UI, listening on the address the instructor chooses, and the exact lines to tell the room. It runs
until Ctrl-C. The compose cluster (`docker-compose.yml`) stays the choice for bigger rooms.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys

from .errors import WorkbookError
from .server import EmbeddedServer, connect_to
from .workshop import state_dir


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="./workbook.sh serve", description=__doc__.splitlines()[0])
    p.add_argument("--ip", default="0.0.0.0", help="address to listen on (default: every address of this machine)")
    p.add_argument("--port", type=int, default=7233, help="the frontend's port (default 7233)")
    p.add_argument("--ui-port", type=int, default=8233, help="the Web UI's port (default 8233)")
    p.add_argument("--advertise", default=None,
                   help="the host name or address learners use (default: this machine's address)")
    p.add_argument("--ui-public-path", default="",
                   help="serve the Web UI under this path, e.g. /services/temporal-ui behind a JupyterHub service "
                        "route (default: at the root)")
    p.add_argument("--ui-url", default=None,
                   help="the Web UI address the room is told, e.g. https://hub.example.org/services/temporal-ui "
                        "(default: http://<advertised host>:<ui-port><ui-public-path>)")
    return p


def check_can_bind(ip: str, port: int) -> None:
    """One line if `ip:port` cannot be listened on (an address of another machine, a port in use)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, port))
        except OSError as err:
            raise WorkbookError(f"Cannot listen on {ip}:{port}: {err.strerror}. Choose another --ip (an address of "
                                "this machine, or 0.0.0.0) or another port.") from None


def advertised(ip: str, given: str | None) -> str:
    if given:
        return given
    if ip not in ("0.0.0.0", "::"):
        return ip
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def check_ui_path(path: str, ui_url: str | None) -> None:
    """One line for a UI path or address the Web UI could not be served under or reached at."""
    if path and (not path.startswith("/") or path == "/" or any(c.isspace() or c in "?#" for c in path)):
        raise WorkbookError(f"--ui-public-path {path!r} must be a path such as /services/temporal-ui (a leading "
                            "slash, no spaces, no ? or #).")
    if ui_url is not None and not ui_url.startswith(("http://", "https://")):
        raise WorkbookError(f"--ui-url {ui_url!r} must be an address the room's browsers open (http:// or https://).")


def room_lines(host: str, port: int, ui_port: int, ui_url: str | None = None) -> list[str]:
    """What the instructor tells the room (each learner then runs the setup check)."""
    return [f"export TEMPORAL_ADDRESS={host}:{port}",
            f"export TEMPORAL_UI_URL={ui_url or f'http://{host}:{ui_port}'}",
            "export WORKBOOK_LEARNER=<a short name of your own>",
            "export WORKBOOK_ROOM=1   # the heavy cells scale down for a shared server",
            "./workbook.sh check   # then ./workbook.sh lab"]


def check_ports(port: int, ui_port: int) -> None:
    """One line for ports the room could not be told (0 means "any free port": the address would change)."""
    for name, value in (("--port", port), ("--ui-port", ui_port)):
        if not 1 <= value <= 65535:
            raise WorkbookError(f"{name} {value} is not a port the room can use: choose one from 1 to 65535.")
    if port == ui_port:
        raise WorkbookError(f"--port and --ui-port are both {port}: the frontend and the Web UI need a port each.")


async def serve(args: argparse.Namespace) -> None:
    check_ports(args.port, args.ui_port)
    check_ui_path(args.ui_public_path, args.ui_url)
    for port in (args.port, args.ui_port):
        check_can_bind(args.ip, port)
    server = EmbeddedServer(port=args.port, ui_port=args.ui_port, ip=args.ip, ui_public_path=args.ui_public_path,
                            db_file=state_dir() / "shared-server.sqlite")
    info = await server.start()
    if (server.port, server.ui_port) != (args.port, args.ui_port):
        server.stop()
        raise WorkbookError(f"Port {args.port} or {args.ui_port} was taken while the server started: run again.")
    await connect_to(info)  # healthy, not only listening: the room may connect the moment it is told
    host = advertised(args.ip, args.advertise)
    print(f"Shared Temporal dev server (pid {info.pid}) listening on {args.ip}:{args.port}, Web UI on port "
          f"{args.ui_port}; workflows kept in {server.db_file}.", flush=True)
    print("Tell the room:", flush=True)
    ui_url = args.ui_url or f"http://{host}:{args.ui_port}{server.ui_public_path}"
    for line in room_lines(host, args.port, args.ui_port, ui_url):
        print(f"    {line}", flush=True)
    print("Ctrl-C stops it.", flush=True)
    try:
        while server.running:
            await asyncio.sleep(1)
        raise WorkbookError(f"The server stopped by itself; its log: {server.log_path}")
    finally:
        server.stop()


def _stop_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt  # `kill` (or a service manager) stops it as Ctrl-C does: the dev server with it


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        asyncio.run(serve(args))
    except WorkbookError as err:
        print(f"serve: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
