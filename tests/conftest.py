"""Fixtures for every suite: real PostgreSQL databases created fresh per test, and the
test's loopback ports handed back to the pool when it ends (``tests.support.ports``)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import embedded_server, fresh_database, server_url
from tests.support.ports import ALLOCATOR


@pytest.fixture(autouse=True)
def _port_lease() -> Iterator[None]:
    # Autouse fixtures are set up first and torn down last: the ports go back only
    # after the test's own fixtures have stopped every peer that used them.
    with ALLOCATOR.lease():
        yield


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[str]:
    # Not under pytest's tmp_path: pytest prunes old base temp dirs, and another pytest
    # run on the same machine could delete a live database's data directory.
    with (
        tempfile.TemporaryDirectory(prefix="rwi-pg-") as directory,
        embedded_server(Path(directory) / "data") as url,
    ):
        yield url


@pytest.fixture
def db_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server named by RWI_TEST_DATABASE_URL."""
    with fresh_database(server_url()) as url:
        yield url


@pytest.fixture(params=["server", "embedded"])
def any_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the server by URL, and on the embedded PostgreSQL."""
    base = server_url() if request.param == "server" else request.getfixturevalue("embedded_pg")
    with fresh_database(base) as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path
