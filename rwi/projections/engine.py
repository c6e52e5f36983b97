"""Running a projection: its checkpoint, a full rebuild, and catching up page by page.

A projection's rows and its checkpoint change in one transaction, under a lock on the
projection's ``projection_checkpoints`` row: the live runner and ``rwi rebuild`` both
take that lock first, so they never interleave, and a runner that finds the position
moved (a rebuild ran) simply continues from the new position.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

import asyncpg

_ENSURE = (
    "INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0) ON CONFLICT DO NOTHING"
)
_LOCK = "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE"
_MOVE = "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1"
_REBUILT = (
    "UPDATE projection_checkpoints SET position = $2, updated_at = now(), rebuilt_at = now() "
    "WHERE name = $1"
)
_HEAD = "SELECT last_seq FROM event_head WHERE id = 1"

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class Projection(Protocol):
    """A fold of the log into tables."""

    @property
    def name(self) -> str: ...

    @property
    def tables(self) -> tuple[str, ...]: ...

    async def rebuild(
        self, conn: asyncpg.Connection, head: int, connect: Connect | None = None
    ) -> int:
        """Fill the (empty) tables from every event up to ``head``; return rows written.
        ``connect`` opens extra connections for reading ahead, if the projection wants."""

    async def advance(self, conn: asyncpg.Connection, after: int, upto: int) -> None:
        """Bring the tables from position ``after`` to ``upto``."""


@dataclass(frozen=True)
class Rebuilt:
    name: str
    position: int
    rows: int
    seconds: float


async def head(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    value: int = await conn.fetchval(_HEAD)
    return value


async def positions(conn: asyncpg.Connection | asyncpg.Pool, names: list[str]) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT name, position FROM projection_checkpoints WHERE name = ANY($1)", names
    )
    found = {r["name"]: int(r["position"]) for r in rows}
    return {name: found.get(name, 0) for name in names}


async def rebuild(
    conn: asyncpg.Connection,
    projection: Projection,
    upto: int | None = None,
    connect: Connect | None = None,
) -> Rebuilt:
    """Empty the projection's tables and fold the log into them again, in one transaction.

    ``upto`` (default: the head now) is the last event included; the checkpoint is left
    there and the live runner continues after it.
    """
    started = time.perf_counter()
    await conn.execute(_ENSURE, projection.name)
    async with conn.transaction():
        await conn.fetchval(_LOCK, projection.name)
        position = await head(conn) if upto is None else upto
        await conn.execute(f"TRUNCATE {', '.join(projection.tables)}")
        async with bulk_load(conn, projection.tables):
            rows = await projection.rebuild(conn, position, connect)
        await conn.execute(_REBUILT, projection.name, position)
    return Rebuilt(projection.name, position, rows, time.perf_counter() - started)


@asynccontextmanager
async def bulk_load(conn: asyncpg.Connection, tables: tuple[str, ...]) -> AsyncIterator[None]:
    """Drop the tables' indexes (keys included) for a load into empty tables, and build
    them again afterwards: one sorted build each instead of a million inserts. Inside the
    caller's transaction (the TRUNCATE's lock keeps everyone else out meanwhile)."""
    oids = [await conn.fetchval("SELECT to_regclass($1)::oid", t) for t in tables]
    keys = await conn.fetch(
        "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def "
        "FROM pg_constraint WHERE conrelid = ANY($1::oid[]) AND contype IN ('p', 'u')",
        oids,
    )
    indexes = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def "
        "FROM pg_index i WHERE i.indrelid = ANY($1::oid[]) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        oids,
    )
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    for key in keys:
        await conn.execute(f'ALTER TABLE {key["tbl"]} DROP CONSTRAINT "{key["conname"]}"')
    yield
    await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for key in keys:
        await conn.execute(
            f'ALTER TABLE {key["tbl"]} ADD CONSTRAINT "{key["conname"]}" {key["def"]}'
        )
    for index in indexes:
        await conn.execute(index["def"])


async def advance(conn: asyncpg.Connection, projection: Projection, upto: int) -> int:
    """Apply the events after the projection's checkpoint up to ``upto``; the new position."""
    async with conn.transaction():
        position: int | None = await conn.fetchval(_LOCK, projection.name)
        if position is None:
            await conn.execute(_ENSURE, projection.name)
            position = await conn.fetchval(_LOCK, projection.name)
            assert position is not None
        if position >= upto:
            return int(position)
        await projection.advance(conn, int(position), upto)
        await conn.execute(_MOVE, projection.name, upto)
    return upto
