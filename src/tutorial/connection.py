"""Where to connect, and how: the Temporal SDK's own environment configuration, as every Temporal user has it.

`temporalio.envconfig` reads `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, the `TEMPORAL_TLS*`
variables, and the profiles of the TOML file `temporal config` writes (`TEMPORAL_CONFIG_FILE`,
`TEMPORAL_PROFILE`). Nothing configured means the embedded dev server. A configuration that cannot work (a profile
that does not exist, a file that does not parse, a certificate file that is missing) is one line saying what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio.envconfig import ClientConfig

from .errors import WorkbookError


@dataclass(frozen=True)
class Target:
    """A configured server: its address and namespace, what `Client.connect` needs beyond them, and how."""

    address: str
    namespace: str
    connect_args: dict[str, Any] = field(default_factory=dict)  # tls, api_key, rpc_metadata...

    @property
    def how(self) -> str:
        """Plain, TLS, mTLS, API key: never the key itself."""
        tls = self.connect_args.get("tls")
        parts = []
        if tls:
            client_cert = getattr(tls, "client_cert", None) if not isinstance(tls, bool) else None
            parts.append("mTLS" if client_cert else "TLS")
        if self.connect_args.get("api_key"):
            parts.append("API key")
        return " + ".join(parts) or "plain"


def configured() -> Target | None:
    """The server the environment configuration names, or None (then the embedded dev server)."""
    try:
        config = dict(ClientConfig.load_client_connect_config())
    except FileNotFoundError as err:
        raise WorkbookError(f"The Temporal configuration names a file that does not exist: {err.filename}. "
                            "Fix the TEMPORAL_TLS_* variable or the profile's tls paths.") from None
    except Exception as err:  # envconfig's ConfigError: a missing profile, a file that does not parse
        first = str(err).strip().splitlines()[0]
        raise WorkbookError(f"The Temporal configuration cannot be used: {first}. Check TEMPORAL_PROFILE and "
                            "TEMPORAL_CONFIG_FILE (or unset them for the embedded dev server).") from None
    address = config.pop("target_host", None)
    if not address:
        return None
    namespace = config.pop("namespace", None) or "default"
    return Target(address=address, namespace=namespace, connect_args=config)
