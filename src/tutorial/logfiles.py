"""The SDK's own log lines go to one file in the state folder, never into a cell.

Two sources write them: the Rust core (forwarded through the Runtime) and the Python SDK's loggers
(`temporalio.activity`, `temporalio.worker`, ...: "Completing activity as failed" when an activity raises on
purpose). Printed in a notebook they surface in whatever cell happens to run, far from their cause; the
notebooks show failures through the exceptions the SDK raises instead. `log_path()` says where to look.
"""

from __future__ import annotations

import logging

from temporalio.runtime import LogForwardingConfig, LoggingConfig, TelemetryFilter

from .workshop import state_dir

FILE_NAME = "temporal-sdk.log"
FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def log_path():
    return state_dir() / FILE_NAME


def _to_file(logger: logging.Logger, level: int) -> logging.Logger:
    """Give `logger` one handler writing to the state folder's file, and stop it reaching the root logger."""
    if not any(getattr(h, "workbook_file", False) for h in logger.handlers):
        handler = logging.FileHandler(log_path())
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.workbook_file = True
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # handlers on child loggers (a test's or a cell's capture) still see every record
    return logger


def route_python_sdk_logs() -> logging.Logger:
    """Every `temporalio.*` logger of this process writes to the file, not to stderr (which a kernel shows)."""
    return _to_file(logging.getLogger("temporalio"), logging.INFO)


def core_logging() -> LoggingConfig:
    """The Runtime's logging setting: the Rust core's warnings (nondeterminism, retries...) to the same file."""
    route_python_sdk_logs()
    core = _to_file(logging.getLogger("tutorial.core"), logging.INFO)
    return LoggingConfig(filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                         forwarding=LogForwardingConfig(logger=core))
