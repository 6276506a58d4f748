"""Benchmark: how long `connect()` takes through each kind of endpoint, in one run (issue 15's figures).

The dev server plain, and Debian's nginx in front of it (the secured-endpoint tests' own proxy and certificates):
TLS only, TLS + API key, mTLS. Each connection is a new client (the TLS handshake included) followed by one
`GetSystemInfo` call, as `server.connect()` does; prints the median and the worst of N (default 15).
    .venv/bin/python scripts/bench_connect.py [N]
"""

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_secured_endpoints import TEMPORAL_VARS, Proxy, make_certificates, settings  # noqa: E402

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest  # noqa: E402

from tutorial import connection, server  # noqa: E402


async def one(env: dict) -> float:
    for name in TEMPORAL_VARS:
        os.environ.pop(name, None)
    os.environ.update(env)
    target = connection.configured()
    info = (server.ServerInfo(address=target.address, namespace=target.namespace, ui_url=None, embedded=False,
                              connect_args=target.connect_args, how=target.how) if target else server.server_info())
    started = time.perf_counter()
    client = await server.connect_to(info)
    await client.workflow_service.get_system_info(GetSystemInfoRequest())
    return (time.perf_counter() - started) * 1000


async def main(n: int) -> None:
    os.environ["TEMPORAL_CONFIG_FILE"] = os.devnull
    await server.connect(quiet=True)
    upstream = server.server_info().address
    folder = Path(tempfile.mkdtemp(prefix="bench-connect-"))
    certs = make_certificates(folder / "certs")
    proxies = {mode: Proxy(folder / mode, certs, upstream, mode=mode) for mode in ("tls", "api_key", "mtls")}
    kinds = {"plain (the dev server)": {},
             "TLS": settings(proxies["tls"], certs, client_cert=False),
             "TLS + API key": settings(proxies["api_key"], certs),
             "mTLS": settings(proxies["mtls"], certs)}
    try:
        times = {kind: [] for kind in kinds}
        for _ in range(n):  # interleaved, so a busy moment of the machine meets every kind alike
            for kind, env in kinds.items():
                times[kind].append(await one(env))
        print(f"connect + GetSystemInfo, {n} times each, interleaved ({os.cpu_count()} cores):")
        for kind, ms in times.items():
            print(f"  {kind:<24} median {statistics.median(ms):6.1f} ms   worst {max(ms):6.1f} ms")
    finally:
        for proxy in proxies.values():
            proxy.stop()
        server.stop_server()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 15))
