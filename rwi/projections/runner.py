"""The projection runner: keeps every projection caught up while the service runs.

Started by ``rwi.runtime`` after the service (so ``service.started`` is in the log) and
stopped before the writer closes. It follows the log with ``EventReader.follow`` and,
for each page, advances each projection in its own transaction (rows and checkpoint
together). A projection far behind the head (first start on an existing log, a long
outage) is rebuilt instead, which is much faster than catching up page by page.

The runner never affects the service: a database error is logged and retried with
backoff, and ``rwi rebuild`` may run at any time (the checkpoint lock serialises them;
the runner then carries on after the rebuilt position).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

import asyncpg

from rwi.projections import PROJECTIONS, engine
from rwi.projections.engine import Projection
from rwi.store import EventReader

log = logging.getLogger(__name__)

#: Further behind than this many events: rebuild rather than follow page by page.
BULK_LAG = 100_000


class ProjectionRunner:
    def __init__(
        self,
        reader: EventReader,
        dsn: str,
        projections: Mapping[str, Projection] = PROJECTIONS,
        *,
        page: int = 2000,
        poll_interval: float = 1.0,
        bulk_lag: int = BULK_LAG,
        min_interval: float = 0.2,
    ) -> None:
        self.reader = reader
        self.dsn = dsn
        self.projections = dict(projections)
        self.page = page
        self.poll_interval = poll_interval
        self.bulk_lag = bulk_lag
        #: at least this long between two advances: under load the log grows by a commit
        #: every few milliseconds, and one transaction per projection per commit would
        #: cost PostgreSQL more than the calls themselves; batched, it is a small share
        self.min_interval = min_interval
        #: name -> position, as last committed by this runner (or found at start)
        self.positions: dict[str, int] = {}
        self.errors = 0
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rwi-projections")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait(), not a suppressed await: a cancellation of stop() itself (a bounded
            # shutdown step) still reaches its caller instead of being swallowed here
            await asyncio.wait({task})
        await self._disconnect()

    async def wait_for(self, seq: int) -> None:
        """Until every projection has folded the log up to ``seq`` (callers bound it with
        ``asyncio.timeout``)."""

        def done() -> bool:
            return len(self.positions) == len(self.projections) and all(
                p >= seq for p in self.positions.values()
            )

        async with self._changed:
            await self._changed.wait_for(done)

    async def caught_up(self) -> int:
        """Until the projections hold the log up to its head as it is now; that head."""
        head = await self.reader.head()
        await self.wait_for(head)
        return head

    # --- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._follow()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.errors += 1
                log.warning("projections: %s; retrying in %.1fs", exc, delay)
            except Exception:  # a bug in a projection must not stop the service
                self.errors += 1
                log.exception("projections: unexpected error; retrying in %.1fs", delay)
            await self._disconnect()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def _follow(self) -> None:
        conn = self._conn = await asyncpg.connect(self.dsn)
        names = list(self.projections)
        positions = await engine.positions(conn, names)
        head = await engine.head(conn)
        for name, projection in self.projections.items():
            if head - positions[name] > self.bulk_lag:
                log.info(
                    "projections: %s is %d events behind: rebuilding", name, head - positions[name]
                )
                rebuilt = await engine.rebuild(conn, projection, connect=self._connect)
                log.info(
                    "projections: %s rebuilt to %d in %.1fs",
                    name,
                    rebuilt.position,
                    rebuilt.seconds,
                )
                positions[name] = rebuilt.position
        await self._publish(positions)
        start = min(positions.values())
        async for page in self.reader.follow(
            start, page=self.page, poll_interval=self.poll_interval
        ):
            started = time.monotonic()
            upto = page[-1].seq
            for name, projection in self.projections.items():
                if positions[name] < upto:
                    positions[name] = await engine.advance(conn, projection, upto)
            await self._publish(positions)
            if len(page) < self.page:
                await asyncio.sleep(self.min_interval - (time.monotonic() - started))

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn)

    async def _publish(self, positions: dict[str, int]) -> None:
        async with self._changed:
            self.positions = dict(positions)
            self._changed.notify_all()

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()
