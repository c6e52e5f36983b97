"""The call-history projection: ``calls``, ``call_segments``, ``recordings``,
``queue_entries``, folded by ``rwi.projections.fold`` from the events that mention a call.

Reading: PostgreSQL filters the log to the events the fold reads and extracts their
fields (``rwi.projections.fields``), so Python never parses event JSON. Writing: COPY.

- ``rebuild``: one pass over the log in ``seq`` pages, every call folded in memory, all
  rows copied at the end.
- ``advance``: the calls a page of new events mentions are recomputed from their whole
  story (their stream, plus the events naming them, through the ``events_call_refs``
  index): their rows are deleted and written again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import asyncpg

from rwi.projections.fields import SELECT
from rwi.projections.fold import HANDLERS, Fold, no_gc, targets
from rwi.projections.tables import COLUMNS

TABLES = ("calls", "call_segments", "recordings", "queue_entries")
PAGE = 100_000
#: Rows folded between two chances for the read-ahead to take its data off the socket.
CHUNK = 20_000

Connect = Callable[[], Awaitable[asyncpg.Connection]]

_SCAN = f"{SELECT} AND e.seq > $1 AND e.seq <= $2 ORDER BY e.seq) AS r"
_STORIES = f"""
{SELECT}
   AND (e.stream_id = ANY($1::text[]) OR rwi_call_refs(e.stream_id, e.type, e.data) && $2::text[])
   AND e.seq <= $3
 ORDER BY e.seq) AS r
"""


async def write(conn: asyncpg.Connection, rows: Iterable[tuple[str, tuple[Any, ...]]]) -> int:
    """COPY rows into their tables (found through the search path); the count."""
    by_table: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for table, row in rows:
        by_table[table].append(row)
    for table in TABLES:
        records = by_table.get(table)
        if records:
            await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])
    return sum(len(r) for r in by_table.values())


class CallsProjection:
    name = "calls"
    tables = TABLES

    def __init__(self, page: int = PAGE) -> None:
        self.page = page

    async def rebuild(
        self, conn: asyncpg.Connection, head: int, connect: Connect | None = None
    ) -> int:
        """Fold the whole log in pages and COPY the rows. With ``connect``, pages are read
        ahead on a second connection while this one folds and writes, so PostgreSQL's
        scanning and loading overlap the Python fold."""
        fold = Fold()
        written = 0
        with no_gc():
            async for low, rows in self._pages(conn, head, connect):
                for start in range(0, len(rows), CHUNK):
                    fold.apply(rows[start : start + CHUNK])
                    await asyncio.sleep(0)  # let the read-ahead progress
                # Calls that ended before this page are written and forgotten.
                written += await write(conn, fold.retire(low))
            written += await write(conn, fold.rows())
        if fold.late:
            written += await self.recompute(conn, sorted(fold.late), head)
        return written

    async def _pages(
        self, conn: asyncpg.Connection, head: int, connect: Connect | None
    ) -> AsyncIterator[tuple[int, list[asyncpg.Record]]]:
        bounds = [(low, min(low + self.page, head)) for low in range(0, head, self.page)]
        if connect is None:
            for low, high in bounds:
                yield low, await conn.fetch(_SCAN, low, high)
            return
        reader = await connect()
        # One backend reading is enough: parallel workers would take the CPU the fold needs.
        await reader.execute("SET max_parallel_workers_per_gather = 0")
        queue: asyncio.Queue[tuple[int, list[asyncpg.Record]]] = asyncio.Queue(maxsize=1)

        async def read_ahead() -> None:
            for low, high in bounds:
                await queue.put((low, await reader.fetch(_SCAN, low, high)))

        task = asyncio.create_task(read_ahead())
        try:
            for _ in bounds:
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait([getter, task], return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    task.result()  # the reader failed: raise its error
                yield getter.result()
        finally:
            task.cancel()
            await asyncio.wait({task})  # not a suppressed await: our own cancellation goes on
            await reader.close()

    async def advance(self, conn: asyncpg.Connection, after: int, upto: int) -> None:
        touched = list(
            dict.fromkeys(
                t
                for row in await conn.fetch(_SCAN, after, upto)
                if row[1] in HANDLERS
                for t in targets(row)
            )
        )
        if touched:
            await self.recompute(conn, touched, upto)

    async def recompute(self, conn: asyncpg.Connection, call_ids: list[str], upto: int) -> int:
        """Delete and rewrite the rows of ``call_ids`` from their events up to ``upto``."""
        fold = Fold(only=set(call_ids))
        streams = [f"call:{c}" for c in call_ids]
        fold.apply(await conn.fetch(_STORIES, streams, call_ids, upto))
        for table in TABLES:
            await conn.execute(f"DELETE FROM {table} WHERE call_id = ANY($1::text[])", call_ids)
        return await write(conn, fold.rows())
