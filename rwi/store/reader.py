"""Readers of the log: pages of ``seq > checkpoint``, and a follower that never skips.

Used by the live state's start-up fold, ``session.resume``, projections and replay.
LISTEN/NOTIFY only wakes a follower early; without it the follower still polls, so a lost
notification delays an event by at most ``poll_interval`` and never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from rwi import jsontext
from rwi.store.events import StoredEvent
from rwi.store.writer import NOTIFY_CHANNEL

_COLUMNS = "seq, event_id, stream_id, stream_version, type, data, meta, recorded_at"
_PAGE = f"SELECT {_COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
_STREAM = (
    f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2 "
    "ORDER BY stream_version LIMIT $3"
)


def to_event(row: asyncpg.Record) -> StoredEvent:
    return StoredEvent(
        seq=row["seq"],
        event_id=row["event_id"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        type=row["type"],
        data=jsontext.loads(row["data"]),
        meta=jsontext.loads(row["meta"]),
        recorded_at=row["recorded_at"],
    )


class EventReader:
    """Reads the log through a connection pool."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn

    async def head(self) -> int:
        value: int = await self._pool.fetchval("SELECT last_seq FROM event_head WHERE id = 1")
        return value

    async def read(self, after_seq: int, limit: int = 1000) -> list[StoredEvent]:
        rows = await self._pool.fetch(_PAGE, after_seq, limit)
        return [to_event(r) for r in rows]

    async def read_stream(
        self, stream_id: str, after_version: int = 0, limit: int = 10000
    ) -> list[StoredEvent]:
        rows = await self._pool.fetch(_STREAM, stream_id, after_version, limit)
        return [to_event(r) for r in rows]

    async def read_all(self, after_seq: int = 0, page: int = 5000) -> AsyncIterator[StoredEvent]:
        """Every event after ``after_seq`` up to the head as it is now, in pages."""
        checkpoint = after_seq
        while True:
            events = await self.read(checkpoint, page)
            for event in events:
                yield event
            if len(events) < page:
                return
            checkpoint = events[-1].seq

    async def follow(
        self, after_seq: int, *, page: int = 1000, poll_interval: float = 1.0
    ) -> AsyncIterator[Sequence[StoredEvent]]:
        """Yield pages of new events forever, in order, starting after ``after_seq``."""
        wake = asyncio.Event()

        def on_notify(*_: Any) -> None:
            wake.set()

        listener: asyncpg.Connection | None = None
        try:
            try:
                listener = await asyncpg.connect(self._dsn)
                await listener.add_listener(NOTIFY_CHANNEL, on_notify)
            except (OSError, asyncpg.PostgresError):
                listener = None  # polling alone is still correct
            checkpoint = after_seq
            while True:
                wake.clear()
                events = await self.read(checkpoint, page)
                if events:
                    checkpoint = events[-1].seq
                    yield events
                    if len(events) == page:
                        continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), poll_interval)
        finally:
            if listener is not None and not listener.is_closed():
                await listener.close()
