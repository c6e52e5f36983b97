"""Where the log lives: a PostgreSQL given by URL, or an embedded one under the data dir.

``rwi serve`` with no database URL starts PostgreSQL through the ``pgserver`` package in
``<data_dir>/pg`` (reused on the next start, stopped on shutdown), and applies the Alembic
migrations before anything reads or writes events.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)


def asyncpg_dsn(url: str) -> str:
    """The URL as asyncpg wants it (no SQLAlchemy driver suffix)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme == "postgres":
        scheme = "postgresql"
    return urlunsplit((scheme, *parts[1:]))


def sqlalchemy_url(url: str) -> str:
    """The URL as SQLAlchemy's asyncpg dialect wants it."""
    parts = urlsplit(asyncpg_dsn(url))
    return urlunsplit(("postgresql+asyncpg", *parts[1:]))


def redact(url: str) -> str:
    """The URL with any password replaced, for logs and start-up messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit((parts.scheme, netloc, *parts[2:]))
    return url


@dataclass
class EmbeddedPostgres:
    """PostgreSQL run by this process from the ``pgserver`` package's binaries."""

    data_dir: Path
    _server: Any = None

    def start(self) -> str:
        import pgserver  # imported lazily: only the embedded mode needs it

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(self.data_dir, cleanup_mode="stop")
        uri: str = self._server.get_uri()
        return uri

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _alembic_config(url: str) -> Any:
    from alembic.config import Config as AlembicConfig

    import migrations

    config = AlembicConfig()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # ConfigParser interpolation: a literal % in a URL must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _head_revision(url: str) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(url)).get_current_head()
    assert head is not None
    return head


def _upgrade(url: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


async def migrate(url: str) -> str:
    """Apply every pending migration; return the head revision now in place."""
    await asyncio.to_thread(_upgrade, url)
    return await asyncio.to_thread(_head_revision, url)


async def migrations_current(pool: asyncpg.Pool, url: str) -> bool:
    """True when the database's Alembic revision is the code's head revision."""
    try:
        current = await pool.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return False
    head = await asyncio.to_thread(_head_revision, url)
    return bool(current == head)


async def create_pool(url: str, size: int = 8) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(asyncpg_dsn(url), min_size=1, max_size=size)
    assert pool is not None
    return pool
