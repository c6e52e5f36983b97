"""Alembic environment: runs migrations over asyncpg through SQLAlchemy's async engine.

The URL comes from the Alembic config's ``sqlalchemy.url`` (set by ``rwi.store.database``)
or from ``RWI_DATABASE_URL`` when ``alembic`` is run by hand.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from rwi.store.schema import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("RWI_DATABASE_URL", "")
    if not url:
        raise RuntimeError("no database URL: set RWI_DATABASE_URL or use `rwi migrate`")
    from rwi.store.database import sqlalchemy_url

    return sqlalchemy_url(url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
