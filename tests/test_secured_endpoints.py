"""A secured Temporal endpoint, for real: Debian's nginx terminates TLS in front of the dev server and forwards gRPC
(`grpc_pass`, HTTP/2), with certificates this test makes. One proxy demands an API key (`authorization: Bearer`),
one a client certificate (mTLS). The workbook connects through each, configured by environment variables or by a
profile file, and notebook 00 passes nbval through each; a wrong key, a missing certificate and an untrusted CA
each get one clear line within seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tutorial import connection, server
from tutorial.errors import WorkbookError

ROOT = Path(__file__).parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
KEY = "workbook-test-key-7f3a"
TEMPORAL_VARS = ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE",
                 "TEMPORAL_TLS", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME",
                 "TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH")

pytestmark = pytest.mark.skipif(not Path(NGINX).exists(), reason="Debian nginx is not installed "
                                "(./workbook.sh test installs it)")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path) -> Path:
    """A CA, a server certificate for localhost, a client certificate; all X.509 v3 (rustls refuses v1)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
                "-days", "2", "-subj", f"/CN=workbook {name}", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    for name, usage in (("server", "serverAuth"), ("client", "clientAuth")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN=workbook {name}", cwd=folder)
        (folder / f"{name}.ext").write_text(f"subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage={usage}\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)
    return folder


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body; proxy_temp_path {dir}/proxy; fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi; scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port} ssl http2;
    ssl_certificate {certs}/server.pem;
    ssl_certificate_key {certs}/server.key;
    {client_check}
    location / {{
      {key_check}
      grpc_pass grpc://{upstream};
      grpc_read_timeout 120s;
    }}
    location @no_certificate {{  # 495: a bad client certificate, 496: none; answered in gRPC too
      default_type application/grpc;
      add_header grpc-status 16 always;
      add_header grpc-message "a valid client certificate is required" always;
      return 204;
    }}
    location @unauthenticated {{  # a gRPC answer, so the client sees UNAUTHENTICATED, not a protocol error
      default_type application/grpc;
      add_header grpc-status 16 always;
      add_header grpc-message "missing or wrong API key" always;
      return 204;
    }}
  }}
}}
"""


class Proxy:
    """One nginx process in front of the session's dev server; stopped at the end of the module."""

    def __init__(self, folder: Path, certs: Path, upstream: str, *, mode: str):
        self.dir, self.port, self.mode = folder, server.free_port(), mode
        folder.mkdir(parents=True, exist_ok=True)
        key_check = (f'if ($http_authorization != "Bearer {KEY}") {{ return 401; }}\n      error_page 401 = @unauthenticated;'
                     if mode == "api_key" else "")
        client_check = (f"ssl_client_certificate {certs}/ca.pem;\n    ssl_verify_client on;\n"
                        "    error_page 495 496 = @no_certificate;" if mode == "mtls" else "")
        (folder / "nginx.conf").write_text(NGINX_CONF.format(dir=folder, port=self.port, certs=certs, upstream=upstream,
                                                             key_check=key_check, client_check=client_check))
        self.process = subprocess.Popen([NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"),
                                         "-e", str(folder / "error.log")], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not server.port_in_use(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {self.process.stderr.read().decode()[-500:]}")
            time.sleep(0.05)

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def proxies(client, certs, tmp_path_factory):
    upstream = server.server_info().address
    made = {mode: Proxy(tmp_path_factory.mktemp(f"nginx-{mode}"), certs, upstream, mode=mode)
            for mode in ("api_key", "mtls")}
    yield made
    for proxy in made.values():
        proxy.stop()


def settings(proxy: Proxy, certs: Path, *, key: str = KEY, client_cert: bool = True, ca: str = "ca") -> dict:
    """The environment variables a Temporal user sets for this endpoint."""
    env = {"TEMPORAL_ADDRESS": proxy.address, "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(certs / f"{ca}.pem")}
    if proxy.mode == "api_key":
        env["TEMPORAL_API_KEY"] = key
    elif client_cert:
        env |= {"TEMPORAL_TLS_CLIENT_CERT_PATH": str(certs / "client.pem"),
                "TEMPORAL_TLS_CLIENT_KEY_PATH": str(certs / "client.key")}
    return env


def profile_file(proxy: Proxy, certs: Path, folder: Path) -> Path:
    """The same endpoint as a profile in the TOML file `temporal config` writes."""
    lines = ["[profile.secured]", f'address = "{proxy.address}"']
    if proxy.mode == "api_key":
        lines.append(f'api_key = "{KEY}"')
    lines += ["[profile.secured.tls]", f'server_ca_cert_path = "{certs / "ca.pem"}"']
    if proxy.mode == "mtls":
        lines += [f'client_cert_path = "{certs / "client.pem"}"', f'client_key_path = "{certs / "client.key"}"']
    path = folder / f"temporal-{proxy.mode}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    for name in TEMPORAL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "none.toml"))
    return monkeypatch


async def connect_through(env: dict):
    """What `server.connect()` does with an external target, on its own (the session's client stays as it is)."""
    target = connection.configured()
    info = server.ServerInfo(address=target.address, namespace=target.namespace, ui_url=None, embedded=False,
                             connect_args=target.connect_args, how=target.how)
    started = time.perf_counter()
    client = await server.connect_to(info)
    await client.workflow_service.get_system_info(__import__("temporalio").api.workflowservice.v1.GetSystemInfoRequest())
    return client, info, time.perf_counter() - started


@pytest.mark.parametrize("mode, how", [("api_key", "TLS + API key"), ("mtls", "mTLS")])
def test_the_workbook_connects_through_each_secured_endpoint(run, proxies, certs, clean_env, mode, how):
    for name, value in settings(proxies[mode], certs).items():
        clean_env.setenv(name, value)
    client, info, seconds = run(connect_through({}))
    assert info.how == how and KEY not in info.status_line() and "external server" in info.status_line()
    print(f"{mode}: connected in {seconds * 1000:.0f} ms")


@pytest.mark.parametrize("mode", ["api_key", "mtls"])
def test_a_profile_file_names_the_same_endpoint(run, proxies, certs, clean_env, tmp_path, mode):
    clean_env.setenv("TEMPORAL_CONFIG_FILE", str(profile_file(proxies[mode], certs, tmp_path)))
    clean_env.setenv("TEMPORAL_PROFILE", "secured")
    _client, info, _ = run(connect_through({}))
    assert info.address == proxies[mode].address


@pytest.mark.parametrize("mode, change, says", [
    ("api_key", {"key": "wrong-key"}, "refused the credentials"),
    ("mtls", {"client_cert": False}, "client certificate"),
    ("api_key", {"ca": "other-ca"}, "not trusted"),
])
def test_wrong_credentials_get_one_line_within_seconds(run, proxies, certs, clean_env, mode, change, says):
    for name, value in settings(proxies[mode], certs, **change).items():
        clean_env.setenv(name, value)
    started = time.perf_counter()
    with pytest.raises(WorkbookError) as err:
        run(connect_through({}))
    text = str(err.value)
    assert says in text and "\n" not in text and KEY not in text, text
    assert time.perf_counter() - started < 15


@pytest.mark.full
@pytest.mark.parametrize("mode, by", [("api_key", "env"), ("api_key", "profile"), ("mtls", "env"), ("mtls", "profile")])
def test_notebook_00_passes_nbval_through_the_proxy(proxies, certs, tmp_path, mode, by):
    env = {k: v for k, v in os.environ.items() if k not in TEMPORAL_VARS}
    env["TEMPORAL_CONFIG_FILE"] = str(tmp_path / "none.toml")
    if by == "env":
        env |= settings(proxies[mode], certs)
    else:
        env |= {"TEMPORAL_CONFIG_FILE": str(profile_file(proxies[mode], certs, tmp_path)), "TEMPORAL_PROFILE": "secured"}
    env["WORKBOOK_LEARNER"] = f"proxy-{mode.replace('_', '')}-{by}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "-p", "no:xdist", str(ROOT / "notebooks" / "00_how_temporal_runs_your_code.ipynb")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    print(f"nbval of notebook 00 through the {mode} proxy ({by}): {time.perf_counter() - started:.1f} s")
