"""Where to connect comes from the SDK's environment configuration: variables and profiles; nothing set means
the embedded server; a configuration that cannot work is one line; the key is never shown."""

from __future__ import annotations

import pytest

from tutorial import connection
from tutorial.errors import WorkbookError


@pytest.fixture()
def env(monkeypatch, tmp_path):
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_PROFILE",
                 "TEMPORAL_TLS", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_CLIENT_CERT_PATH",
                 "TEMPORAL_TLS_CLIENT_KEY_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "none.toml"))
    return monkeypatch


def test_nothing_configured_means_the_embedded_server(env):
    assert connection.configured() is None


def test_variables_name_the_server_and_the_key_is_never_shown(env):
    env.setenv("TEMPORAL_ADDRESS", "temporal.example:7233")
    env.setenv("TEMPORAL_NAMESPACE", "workshop")
    env.setenv("TEMPORAL_API_KEY", "secret-key-123")
    target = connection.configured()
    assert (target.address, target.namespace) == ("temporal.example:7233", "workshop")
    assert target.connect_args["api_key"] == "secret-key-123" and target.how == "TLS + API key"
    assert "secret-key-123" not in repr(target.how)


def test_a_profile_in_the_config_file(env, tmp_path):
    config = tmp_path / "temporal.toml"
    config.write_text('[profile.room]\naddress = "room.example:7233"\nnamespace = "room"\n')
    env.setenv("TEMPORAL_CONFIG_FILE", str(config))
    env.setenv("TEMPORAL_PROFILE", "room")
    target = connection.configured()
    assert (target.address, target.namespace, target.how) == ("room.example:7233", "room", "plain")


@pytest.mark.parametrize("setup, says", [
    ({"TEMPORAL_PROFILE": "nope"}, "Profile 'nope' not found"),
    ({"TEMPORAL_ADDRESS": "h:1", "TEMPORAL_TLS_SERVER_CA_CERT_PATH": "/no/such/ca.pem"}, "/no/such/ca.pem"),
])
def test_a_configuration_that_cannot_work_is_one_line(env, setup, says):
    for name, value in setup.items():
        env.setenv(name, value)
    with pytest.raises(WorkbookError) as err:
        connection.configured()
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_config_file_that_does_not_parse_is_one_line(env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[profile.default\naddress=")
    env.setenv("TEMPORAL_CONFIG_FILE", str(bad))
    with pytest.raises(WorkbookError) as err:
        connection.configured()
    assert "cannot be used" in str(err.value) and "\n" not in str(err.value)
