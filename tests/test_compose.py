"""docker-compose.yml describes a real workshop cluster (no Docker engine here, so we check its structure)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).parent.parent / "docker-compose.yml"


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load(COMPOSE.read_text())


def test_services_are_postgres_schema_server_namespace_ui(spec):
    assert set(spec["services"]) == {"postgresql", "temporal-schema", "temporal", "temporal-namespace", "temporal-ui"}


def test_server_listens_on_7233_and_ui_on_8080(spec):
    assert "7233:7233" in spec["services"]["temporal"]["ports"]
    assert "8080:8080" in spec["services"]["temporal-ui"]["ports"]
    assert spec["services"]["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_start_order_waits_for_health_and_schema(spec):
    s = spec["services"]
    assert s["temporal-schema"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert s["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert s["temporal-ui"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for name in ("postgresql", "temporal", "temporal-ui"):
        assert "test" in s[name]["healthcheck"], f"{name} needs a healthcheck"


def test_server_uses_postgres_with_the_schema_tool_s_credentials(spec):
    env = spec["services"]["temporal"]["environment"]
    assert env["DB"] == "postgres12" and env["POSTGRES_SEEDS"] == "postgresql"
    assert spec["services"]["postgresql"]["environment"]["POSTGRES_USER"] == env["POSTGRES_USER"]
    schema = spec["services"]["temporal-schema"]["command"][0]
    assert "setup-schema" in schema and "temporal_visibility" in schema


def test_images_are_pinned(spec):
    for name, service in spec["services"].items():
        assert ":" in service["image"] and not service["image"].endswith(":latest"), name


@pytest.mark.skipif(shutil.which("docker") is None, reason="docker client not installed")
def test_docker_compose_config_accepts_it():
    """The docker client parses the file without an engine (skipped where there is no client)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose plugin not installed")
    out = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
