"""Group-commit writer: the one path by which events enter the log.

Concurrent ``append`` calls queue up; one task takes everything queued, appends it in one
transaction with one commit (one fsync), and resolves each caller with its ``seq``s.

Gap-free order: every batch first locks the single ``event_head`` row, assigns ``seq``
under that lock and commits while holding it, so batches (also from other processes)
commit in ``seq`` order and a follower reading ``seq > checkpoint`` never skips one.
The lock is taken in its own statement so the version/duplicate checks that follow see
everything committed before it (READ COMMITTED takes a fresh snapshot per statement).

Each append request stands alone: a version conflict or a partial duplicate fails that
request with a typed error while the rest of the batch commits.

A lost connection (the database restarted or went away) fails the batch in flight with
``StoreError``; the next batch connects again, so the writer outlives any outage and
appends fail promptly while the database is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from rwi import jsontext
from rwi.store.errors import (
    ConcurrencyError,
    DuplicateEventError,
    StoreClosedError,
    StoreError,
    UnstorableEventError,
)
from rwi.store.events import ANY, NewEvent

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "rwi_events"
#: seconds one attempt to (re)connect may take before the batch waiting on it fails
CONNECT_TIMEOUT = 5.0
#: ``\u0000`` in JSON text that is not itself an escaped backslash followed by "u0000"
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

_LOCK_HEAD = "BEGIN; SELECT 1 FROM event_head WHERE id = 1 FOR UPDATE"
_FAST = "SELECT rwi_append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
_CHECKS = """
SELECT s AS stream_id,
       (SELECT max(stream_version) FROM events WHERE stream_id = s)::bigint AS n,
       NULL::uuid AS event_id
  FROM unnest($1::text[]) AS s
UNION ALL
SELECT NULL, seq, event_id FROM events WHERE event_id = ANY($2::uuid[])
"""
_INSERT = """
WITH head AS (SELECT last_seq FROM event_head WHERE id = 1),
ins AS (
  INSERT INTO events (seq, event_id, stream_id, stream_version, type, data, meta)
  SELECT head.last_seq + u.ord, u.event_id, u.stream_id, u.stream_version, u.type,
         u.data::jsonb, u.meta::jsonb
    FROM head, unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[])
         WITH ORDINALITY AS u(event_id, stream_id, stream_version, type, data, meta, ord)
),
upd AS (UPDATE event_head SET last_seq = last_seq + $7 WHERE id = 1 RETURNING last_seq)
SELECT upd.last_seq, pg_notify($8, upd.last_seq::text) FROM upd
"""


@dataclass(frozen=True)
class AppendPart:
    """One stream's share of an atomic append."""

    stream_id: str
    events: Sequence[NewEvent]
    expected_version: int | None = ANY


@dataclass
class _Pending:
    parts: Sequence[AppendPart]
    future: asyncio.Future[list[int]]
    #: event id -> (data, meta) as JSON text, encoded once when the append is queued
    encoded: dict[uuid.UUID, tuple[str, str]] = field(default_factory=dict)

    @property
    def events(self) -> list[NewEvent]:
        return [e for part in self.parts for e in part.events]


@dataclass
class _Plan:
    """What one batch will insert, and which pending requests get which seqs."""

    rows: list[tuple[uuid.UUID, str, int, str, str, str]] = field(default_factory=list)
    #: pending request -> offsets (0-based) of its rows, or seqs already stored
    new_rows: list[tuple[_Pending, list[int]]] = field(default_factory=list)
    done: list[tuple[_Pending, list[int]]] = field(default_factory=list)
    failed: list[tuple[_Pending, StoreError]] = field(default_factory=list)


def encode_json(value: dict[str, Any]) -> str:
    """JSON text for a jsonb column, or ``UnstorableEventError`` if jsonb cannot hold it."""
    try:
        text = jsontext.dumps(value)
        text.encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        raise UnstorableEventError(f"event data is not storable JSON: {exc}") from None
    if "\\u0000" in text and _NUL_ESCAPE.search(text):
        raise UnstorableEventError("event data contains a NUL character, which jsonb cannot hold")
    return text


class GroupCommitWriter:
    """Batches concurrent appends into one statement and one commit."""

    def __init__(
        self,
        dsn: str,
        *,
        max_batch_events: int = 4000,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        """``on_batch(events, seconds)`` is told of every committed batch (metrics)."""
        self._dsn = dsn
        self._on_batch = on_batch
        self._max_batch_events = max_batch_events
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches = 0
        self.events_written = 0

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
        self._task = asyncio.create_task(self._run(), name="rwi-store-writer")

    async def close(self) -> None:
        """Commit everything already queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None = ANY,
    ) -> list[int]:
        """Append ``events`` to ``stream_id``; return their seqs once durable.

        ``expected_version`` is the stream's version before the append (``NO_STREAM`` = 0
        for a new stream) or ``ANY``. Re-appending the same event ids returns the seqs
        they were stored with and writes nothing.
        """
        return await self.append_atomic([AppendPart(stream_id, events, expected_version)])

    async def append_atomic(self, parts: Sequence[AppendPart]) -> list[int]:
        """Append to several streams all or nothing; seqs in the order of the parts."""
        return await self.append_soon(parts)

    def append_soon(self, parts: Sequence[AppendPart]) -> asyncio.Future[list[int]]:
        """``append_atomic`` queued now, in the caller's order: the future resolves with
        the seqs once durable. Lets a caller queue the next append without waiting for
        this one's commit, which is what keeps the order of its appends."""
        if self._closing or self._task is None:
            raise StoreClosedError("the event store writer is not running")
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        if not any(part.events for part in parts):
            future.set_result([])
            return future
        # Encoded here, in the caller's context, so bad data fails its own append and
        # never the writer's batch.
        encoded = {
            e.event_id: (encode_json(e.data), encode_json(e.meta))
            for part in parts
            for e in part.events
        }
        self._queue.append(_Pending(parts, future, encoded))
        self._wake.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._take_batch()
                await self._commit_batch(batch)
            if self._closing:
                return

    def _take_batch(self) -> list[_Pending]:
        count = 0
        taken = 0
        for pending in self._queue:
            if taken and count + len(pending.events) > self._max_batch_events:
                break
            count += len(pending.events)
            taken += 1
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        return batch

    async def _commit_batch(self, batch: list[_Pending]) -> None:
        try:
            plan = await self._write(batch)
        except Exception as exc:  # the writer must outlive any one batch
            # The commit's outcome is unknown: callers retry with the same event ids,
            # which is safe because appends are idempotent.
            log.error("event store batch of %d appends failed: %r", len(batch), exc)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(StoreError(f"append failed: {exc}"))
            await self._reset_connection()
            return
        for pending, seqs in plan.done:
            if not pending.future.done():
                pending.future.set_result(seqs)
        for pending, error in plan.failed:
            if not pending.future.done():
                pending.future.set_exception(error)

    async def _reset_connection(self) -> None:
        """After a failed batch: roll back on a live connection, or drop a dead one
        (the next batch connects again). Nothing waits here for the database to come
        back, so while it is away every append fails at once instead of queueing."""
        conn = self._conn
        if conn is None:
            return
        if not conn.is_closed():
            try:
                await conn.execute("ROLLBACK")
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                conn.terminate()
        self._conn = None

    async def _connection(self) -> asyncpg.Connection:
        """The writer's connection, made again if the last one was lost."""
        if self._conn is None or self._conn.is_closed():
            self._conn = None
            self._conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
        return self._conn

    async def _write(self, batch: list[_Pending]) -> _Plan:
        conn = await self._connection()
        started = time.perf_counter()
        plan = await self._write_fast(conn, batch)
        if plan is None:
            plan = await self._write_planned(conn, batch)
        self.batches += 1
        self.events_written += len(plan.rows)
        if self._on_batch is not None:
            self._on_batch(len(plan.rows), time.perf_counter() - started)
        return plan

    async def _write_fast(self, conn: asyncpg.Connection, batch: list[_Pending]) -> _Plan | None:
        """The common case in one round trip; None when the batch needs planning."""
        plan = _Plan()
        r_stream, r_expected, r_offset = [], [], []
        e_stream, e_index = [], []
        in_stream: dict[str, int] = {}
        seen: set[uuid.UUID] = set()
        for pending in batch:
            offsets = []
            for part in pending.parts:
                before = in_stream.get(part.stream_id, 0)
                r_stream.append(part.stream_id)
                r_expected.append(part.expected_version)
                r_offset.append(before)
                for event in part.events:
                    if event.event_id in seen:
                        return None
                    seen.add(event.event_id)
                    before += 1
                    offsets.append(len(plan.rows))
                    e_stream.append(part.stream_id)
                    e_index.append(before)
                    plan.rows.append(
                        (
                            event.event_id,
                            part.stream_id,
                            before,
                            event.type,
                            *pending.encoded[event.event_id],
                        )
                    )
                in_stream[part.stream_id] = before
            plan.new_rows.append((pending, offsets))
        ids, _, _, types, datas, metas = zip(*plan.rows, strict=True)
        last_seq = await conn.fetchval(
            _FAST,
            r_stream,
            r_expected,
            r_offset,
            ids,
            e_stream,
            e_index,
            types,
            datas,
            metas,
            NOTIFY_CHANNEL,
        )
        if last_seq < 0:
            return None
        base = last_seq - len(plan.rows) + 1
        for pending, offsets in plan.new_rows:
            plan.done.append((pending, [base + o for o in offsets]))
        return plan

    async def _write_planned(self, conn: asyncpg.Connection, batch: list[_Pending]) -> _Plan:
        """Request by request: conflicts and duplicates fail alone, the rest commits."""
        await conn.execute(_LOCK_HEAD)
        try:
            streams = list({part.stream_id for p in batch for part in p.parts})
            ids = [e.event_id for p in batch for e in p.events]
            versions: dict[str, int] = {}
            stored: dict[uuid.UUID, int] = {}
            for row in await conn.fetch(_CHECKS, streams, ids):
                if row["event_id"] is None:
                    if row["n"] is not None:  # NULL: the stream has no events yet
                        versions[row["stream_id"]] = row["n"]
                else:
                    stored[row["event_id"]] = row["n"]
            plan = self._plan(batch, versions, stored)
            if plan.rows:
                columns = list(zip(*plan.rows, strict=True))
                last_seq = await conn.fetchval(_INSERT, *columns, len(plan.rows), NOTIFY_CHANNEL)
                base = last_seq - len(plan.rows) + 1
                for pending, offsets in plan.new_rows:
                    plan.done.append((pending, [base + o for o in offsets]))
            await conn.execute("COMMIT")
        except BaseException:
            if not conn.is_closed():
                try:
                    await conn.execute("ROLLBACK")
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    conn.terminate()
            raise
        return plan

    @staticmethod
    def _plan(
        batch: list[_Pending], versions: dict[str, int], stored: dict[uuid.UUID, int]
    ) -> _Plan:
        plan = _Plan()
        in_batch: dict[uuid.UUID, int] = {}  # event id -> row offset within this batch
        seq_of_offset: list[tuple[_Pending, list[int]]] = []
        for pending in batch:
            event_ids = [e.event_id for e in pending.events]
            known = [i in stored or i in in_batch for i in event_ids]
            if all(known):
                if all(i in stored for i in event_ids):
                    plan.done.append((pending, [stored[i] for i in event_ids]))
                    continue
                if all(i in in_batch for i in event_ids):
                    # A retry racing its original inside one batch: resolve after insert.
                    seq_of_offset.append((pending, [in_batch[i] for i in event_ids]))
                    continue
            if any(known) or len(set(event_ids)) != len(event_ids):
                plan.failed.append(
                    (pending, DuplicateEventError("some event ids of this append already exist"))
                )
                continue
            error = _version_error(pending, versions)
            if error is not None:
                plan.failed.append((pending, error))
                continue
            offsets = []
            for part in pending.parts:
                current = versions.get(part.stream_id, 0)
                for event in part.events:
                    current += 1
                    offset = len(plan.rows)
                    in_batch[event.event_id] = offset
                    offsets.append(offset)
                    plan.rows.append(
                        (
                            event.event_id,
                            part.stream_id,
                            current,
                            event.type,
                            *pending.encoded[event.event_id],
                        )
                    )
                versions[part.stream_id] = current
            plan.new_rows.append((pending, offsets))
        plan.new_rows.extend(seq_of_offset)
        return plan


def _version_error(pending: _Pending, versions: dict[str, int]) -> ConcurrencyError | None:
    """The first part whose expected version is off, given earlier parts of this append."""
    seen: dict[str, int] = {}
    for part in pending.parts:
        current = seen.get(part.stream_id, versions.get(part.stream_id, 0))
        if part.expected_version is not ANY and part.expected_version != current:
            return ConcurrencyError(part.stream_id, part.expected_version, current)
        seen[part.stream_id] = current + len(part.events)
    return None
