"""Zero-install launch: Binder (repo2docker's `binder/`) and Codespaces (`.devcontainer/devcontainer.json`).

There is no Docker engine here, so neither image is built. What can run, runs: the real `jupyter-repo2docker
--no-build` says what it would build from this repository (and, without `binder/`, that it would build
something else); `binder/postBuild` runs the README's setup and check into the environment it is given; the
devcontainer's JupyterLab command starts, answers a request for a Codespaces-style forwarded host name, and
serves the shared dev server's Web UI through its own port. The rest is checked for structure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from unittest.mock import ANY  # equal to anything: the path the CLI adds

import pytest

from tutorial import server

ROOT = Path(__file__).parent.parent
REPO2DOCKER = Path(sys.executable).parent / "jupyter-repo2docker"
DEVCONTAINER = ROOT / ".devcontainer" / "devcontainer.json"
FORWARDED_HOST = "fluffy-space-disco-8888.app.github.dev"  # what a codespace's forwarded port is called


def repo2docker_plan(repo: Path) -> str:
    """The Dockerfile repo2docker would build (as Binder, user 1000), and the lines it logs before it."""
    if not REPO2DOCKER.exists():
        pytest.skip("jupyter-repo2docker is not installed (it is in the test extras)")
    out = subprocess.run([str(REPO2DOCKER), "--no-build", "--debug", "--user-id", "1000", "--user-name", "jovyan",
                          str(repo)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout + out.stderr


def test_repo2docker_builds_python_3_11_and_runs_the_readme_setup_last():
    plan = repo2docker_plan(ROOT)
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    version = runtime.removeprefix("python-")
    assert f"Building conda environment for python={version}" in plan, plan[:800]
    copied = plan.index("COPY --chown=1000:1000 src/ ${REPO_DIR}/")  # the repository, owned by the learner
    as_learner = plan.index("USER ${NB_USER}", copied)
    assert plan.index("RUN ./binder/postBuild", as_learner) > as_learner  # after the copy, not as root
    assert "NB_PYTHON_PREFIX=${CONDA_DIR}/envs/notebook" in plan  # where postBuild installs the workbook
    requires = re.search(r'requires-python = ">=(\d+)\.(\d+)"', (ROOT / "pyproject.toml").read_text()).groups()
    assert tuple(map(int, version.split("."))) >= tuple(map(int, requires))


def test_counterfactual_without_binder_repo2docker_builds_no_workbook(tmp_path):
    """The check above sees the configuration: the same repository without `binder/` is planned differently."""
    for name in ("pyproject.toml", "README.md", "workbook.sh"):
        shutil.copy(ROOT / name, tmp_path / name)
    plan = repo2docker_plan(tmp_path)
    assert "RUN ./binder/postBuild" not in plan


def wrapper_prefix(folder: Path) -> Path:
    """An environment prefix whose python and jupyter are this test run's (its setup stamped as done): what
    workbook.sh does in it is real, without a second install of everything."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "jupyter"):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{Path(sys.executable).parent / name}" "$@"\n')
        (bin_dir / name).chmod(0o755)
    (folder / ".installed").touch()  # newer than pyproject.toml: workbook.sh's setup skips the pip install
    return folder


def test_postbuild_runs_the_readme_setup_check_in_binders_environment(tmp_path):
    postbuild = ROOT / "binder" / "postBuild"
    assert os.access(postbuild, os.X_OK)
    assert "./workbook.sh check" in postbuild.read_text()
    prefix = wrapper_prefix(tmp_path / "notebook-env")
    env = dict(os.environ, NB_PYTHON_PREFIX=str(prefix), WORKBOOK_STATE_DIR=str(tmp_path / "state"))
    env.pop("TEMPORAL_ADDRESS", None)
    out = subprocess.run([str(postbuild)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "Ready for the workshop." in out.stdout, (out.stdout + out.stderr)[-2000:]
    assert "Installing" not in out.stdout  # it used the prefix Binder gave it, not a .venv of its own


def devcontainer() -> dict:
    """devcontainer.json is JSON with comments (whole-line `//` comments here)."""
    text = "\n".join(line for line in DEVCONTAINER.read_text().splitlines() if not line.strip().startswith("//"))
    return json.loads(text)


def devcontainer_cli() -> str:
    """The Dev Containers CLI (npm @devcontainers/cli): build/devcontainer-cli, as workbook.sh puts it, or PATH."""
    local = ROOT / "build" / "devcontainer-cli" / "node_modules" / ".bin" / "devcontainer"
    found = str(local) if local.exists() else shutil.which("devcontainer")
    if not found:
        pytest.skip("the Dev Containers CLI is not installed (npm install --prefix build/devcontainer-cli "
                    "@devcontainers/cli)")
    return found


def test_the_dev_containers_cli_reads_the_configuration_as_written():
    """The real parser (comments and all). It asks Docker for running containers first: there is no engine here, so
    it is told that none run (`--docker-path true`); reading the configuration needs nothing else."""
    out = subprocess.run([devcontainer_cli(), "read-configuration", "--workspace-folder", str(ROOT),
                          "--docker-path", shutil.which("true")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)["configuration"] == {**devcontainer(), "configFilePath": ANY}


def workbook_commands() -> set[str]:
    return set(re.findall(r"^  (\w+)\)", (ROOT / "workbook.sh").read_text(), re.M))


def lab_command() -> list[str]:
    return devcontainer()["postAttachCommand"]["jupyterlab"].split()


def test_devcontainer_runs_the_readme_setup_then_jupyterlab_on_one_forwarded_port():
    config = devcontainer()
    python = re.search(r"python:(\d+\.\d+)", config["image"]).group(1)
    assert tuple(map(int, python.split("."))) >= (3, 10)
    assert config["postCreateCommand"] == "./workbook.sh check"
    command = lab_command()
    assert command[0] == "./workbook.sh" and command[1] == "lab" and {"check", "lab"} <= workbook_commands()
    port = int(next(arg for arg in command if arg.startswith("--port=")).split("=")[1])
    assert config["forwardPorts"] == [port]  # one port: the Web UI comes through Jupyter's
    assert "--ServerApp.port_retries=0" in command  # a re-attach must not start a second lab on another port
    assert config["portsAttributes"][str(port)]["onAutoForward"] == "openBrowser"
    assert "--notebook-dir=notebooks" in (ROOT / "workbook.sh").read_text()  # `lab` opens notebooks/


def get(url: str, host: str) -> int:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_devcontainers_lab_answers_the_forwarded_host_and_serves_the_web_ui(tmp_path):
    """The devcontainer's own command, for real: Codespaces' forwarded host name is accepted (Jupyter refuses a
    non-local Host by default) and the shared server's UI is on the same port, at /temporal/."""
    port = server.free_port()
    command = [arg if not arg.startswith("--port=") else f"--port={port}" for arg in lab_command()]
    command[0] = str(ROOT / "workbook.sh")
    home = tmp_path / "home"
    env = dict(os.environ, WORKBOOK_VENV=str(wrapper_prefix(tmp_path / "venv")), HOME=str(home),
               JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), WORKBOOK_STATE_DIR=str(tmp_path / "state"))
    env.pop("TEMPORAL_ADDRESS", None)
    env.pop(server.SHARED_ENV, None)
    lab = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=open(tmp_path / "lab.log", "wb"), start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                assert lab.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
                time.sleep(0.3)
        assert get(f"{base}/lab", FORWARDED_HOST) == 200, (tmp_path / "lab.log").read_text()[-2000:]
        assert get(f"{base}/temporal/namespaces/default/workflows", FORWARDED_HOST) == 200
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)


def test_counterfactual_jupyter_refuses_the_forwarded_host_without_allow_remote_access(tmp_path):
    """Why the devcontainer passes --ServerApp.allow_remote_access=True: without it, the codespace's page is a 403."""
    port, home = server.free_port(), tmp_path / "home"
    env = dict(os.environ, HOME=str(home), JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               WORKBOOK_STATE_DIR=str(tmp_path / "state"), TEMPORAL_ADDRESS="127.0.0.1:1")  # no dev server needed
    lab = subprocess.Popen([str(Path(sys.executable).parent / "jupyter"), "server", "--no-browser", "--allow-root",
                            "--ip=127.0.0.1", f"--port={port}", "--IdentityProvider.token="],
                           env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=2)
                break
            except OSError:
                time.sleep(0.3)
        assert get(f"http://127.0.0.1:{port}/api/status", FORWARDED_HOST) == 403
    finally:
        lab.terminate()
        lab.wait(30)
