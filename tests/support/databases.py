"""Throw-away databases on a real PostgreSQL: the server by URL, or an embedded one."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("RWI_TEST_DATABASE_URL", DEFAULT_URL)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A new empty database on the server of ``base_url``; dropped afterwards."""
    name = f"rwi_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(base_url, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(base_url, name)
    finally:
        asyncio.run(_admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def embedded_server(directory: Path) -> Iterator[str]:
    """PostgreSQL from the pgserver package, as ``rwi serve`` starts it by default."""
    from rwi.store.database import EmbeddedPostgres

    embedded = EmbeddedPostgres(directory)
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()
