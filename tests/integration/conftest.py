"""Fixtures for tests over real HTTP (helpers in live_server.py).

- ``start_server(**options)``: a server on a free port with its own temp DB, stopped
  (SIGTERM) at the end of the test that started it; options as ``live_server.launch``.
- ``service``: one shared server with an admin token, for the whole session, once per
  server configuration (bjoern, bjoern with 2 workers, meinheld, granian).
- ``api``: a small JSON client for ``service``; ``snapshot()``: its database's rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from live_server import Api, Server, assert_no_unhandled_errors, db_snapshot, launch


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    started: list[Server] = []

    def start(**options: Any) -> Server:
        server = launch(tmp_path_factory.mktemp("server"), **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        assert_no_unhandled_errors(server)


# every test on the shared service runs on each server configuration SPEC 8 names
SERVER_CONFIGURATIONS = {
    "bjoern": (),
    "bjoern-2-workers": ("--workers", "2"),
    "meinheld": ("--server", "meinheld"),
    "granian": ("--server", "granian", "--threads", "8"),
}


@pytest.fixture(scope="session", params=sorted(SERVER_CONFIGURATIONS))
def service(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = launch(tmp_path_factory.mktemp("service"), extra_args=SERVER_CONFIGURATIONS[request.param])
    yield server
    status = server.stop()
    assert_no_unhandled_errors(server)
    assert status == 0, f"server exited with {status}:\n{server.log()}"


@pytest.fixture
def api(service: Server) -> Iterator[Api]:
    client = Api(service)
    yield client
    client.close()


@pytest.fixture
def snapshot(service: Server) -> Any:
    return lambda: db_snapshot(service.db_path)
