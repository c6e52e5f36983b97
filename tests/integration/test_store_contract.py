"""The event store's contract, on a real PostgreSQL (server by URL and embedded)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid

import asyncpg
import pytest

from rwi.store import (
    ANY,
    NO_STREAM,
    AppendPart,
    ConcurrencyError,
    DuplicateEventError,
    EventReader,
    GroupCommitWriter,
    NewEvent,
    UnstorableEventError,
)
from rwi.store.database import asyncpg_dsn, create_pool, migrate

pytestmark = pytest.mark.integration


async def _store(url: str) -> tuple[GroupCommitWriter, EventReader, asyncpg.Pool]:
    await migrate(url)
    pool = await create_pool(url, 4)
    writer = GroupCommitWriter(asyncpg_dsn(url))
    await writer.start()
    return writer, EventReader(pool, asyncpg_dsn(url)), pool


async def test_follower_sees_no_gap_and_strict_order_while_48_writers_append(
    any_db_url: str,
) -> None:
    writer, reader, pool = await _store(any_db_url)
    per_writer, writers = 40, 48
    total = per_writer * writers
    acked: dict[int, tuple[str, int]] = {}

    async def write(n: int) -> None:
        for i in range(per_writer):
            seqs = await writer.append(f"w:{n}", [NewEvent("tick", {"writer": n, "i": i})])
            acked[seqs[0]] = (f"w:{n}", i)

    seen: list[int] = []

    async def follow() -> None:
        async for page in reader.follow(0, page=37, poll_interval=0.2):
            for event in page:
                # every page continues exactly where the last one ended
                assert event.seq == (seen[-1] + 1 if seen else 1), (event.seq, seen[-3:])
                seen.append(event.seq)
            if len(seen) >= total:
                return

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write(n) for n in range(writers)))
    await asyncio.wait_for(follower, 30)
    await writer.close()

    assert seen == list(range(1, total + 1))
    assert sorted(acked) == seen
    # per stream, versions are dense and follow the writer's own order
    rows = await pool.fetch("SELECT stream_id, stream_version, data FROM events ORDER BY seq")
    by_stream: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        by_stream.setdefault(row["stream_id"], []).append(
            (row["stream_version"], json.loads(row["data"])["i"])
        )
    for stream, items in by_stream.items():
        assert items == [(v, v - 1) for v in range(1, per_writer + 1)], stream
    assert await reader.head() == total
    await pool.close()


async def test_version_conflict_fails_only_the_loser(any_db_url: str) -> None:
    writer, reader, pool = await _store(any_db_url)
    assert await writer.append("order:1", [NewEvent("created", {})], NO_STREAM) == [1]
    # both expect version 1; they land in one batch, the second must lose alone
    winner = writer.append("order:1", [NewEvent("paid", {})], 1)
    loser = writer.append("order:1", [NewEvent("cancelled", {})], 1)
    bystander = writer.append("order:2", [NewEvent("created", {})], NO_STREAM)
    results = await asyncio.gather(winner, loser, bystander, return_exceptions=True)
    assert results[0] == [2]
    assert isinstance(results[1], ConcurrencyError)
    assert (results[1].expected, results[1].actual) == (1, 2)
    assert results[2] == [3]
    events = [e async for e in reader.read_all(0)]
    assert [(e.stream_id, e.stream_version, e.type) for e in events] == [
        ("order:1", 1, "created"),
        ("order:1", 2, "paid"),
        ("order:2", 1, "created"),
    ]
    with pytest.raises(ConcurrencyError):
        await writer.append("order:2", [NewEvent("x", {})], NO_STREAM)
    await writer.close()
    await pool.close()


async def test_reappending_the_same_event_id_returns_the_original_seq(any_db_url: str) -> None:
    writer, reader, pool = await _store(any_db_url)
    first = NewEvent("created", {"n": 1})
    second = NewEvent("updated", {"n": 2})
    seqs = await writer.append("doc:1", [first, second])
    await writer.append("doc:2", [NewEvent("other", {})])
    # a retry after a lost acknowledgement: same ids, same seqs, nothing written
    assert await writer.append("doc:1", [first, second], NO_STREAM) == seqs
    # a retry racing its original inside one batch
    third = NewEvent("x", {})
    both = await asyncio.gather(writer.append("doc:3", [third]), writer.append("doc:3", [third]))
    assert both[0] == both[1] == [4]
    # half old, half new is not a retry
    with pytest.raises(DuplicateEventError):
        await writer.append("doc:1", [first, NewEvent("new", {})])
    assert await reader.head() == 4
    assert [e.type for e in await reader.read_stream("doc:1")] == ["created", "updated"]
    await writer.close()
    await pool.close()


async def test_atomic_append_across_streams_is_all_or_nothing(db_url: str) -> None:
    writer, reader, pool = await _store(db_url)
    await writer.append("a", [NewEvent("one", {})])
    with pytest.raises(ConcurrencyError):
        await writer.append_atomic(
            [
                AppendPart("b", [NewEvent("two", {})], NO_STREAM),
                AppendPart("a", [NewEvent("x", {})], 5),
            ]
        )
    assert await reader.head() == 1
    seqs = await writer.append_atomic(
        [AppendPart("b", [NewEvent("two", {})], ANY), AppendPart("a", [NewEvent("three", {})], 1)]
    )
    assert seqs == [2, 3]
    await writer.close()
    await pool.close()


CRASHING_WRITER = r"""
import asyncio, sys, uuid
from rwi.store import GroupCommitWriter, NewEvent
async def main():
    writer = GroupCommitWriter(sys.argv[1])
    await writer.start()
    async def one(n):
        for i in range(100000):
            event = NewEvent("tick", {"n": n, "i": i})
            await writer.append(f"crash:{n}", [event])
            sys.stdout.write(f"{event.event_id}\n")
            sys.stdout.flush()
    await asyncio.gather(*(one(n) for n in range(16)))
asyncio.run(main())
"""


async def test_crash_mid_batch_loses_nothing_acknowledged(db_url: str) -> None:
    await migrate(db_url)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASHING_WRITER,
        asyncpg_dsn(db_url),
        stdout=asyncio.subprocess.PIPE,
        cwd=os.getcwd(),
    )
    assert proc.stdout is not None
    acked: list[str] = []
    while len(acked) < 3000:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, "writer process ended early"
        acked.append(line.decode().strip())
    proc.send_signal(signal.SIGKILL)  # mid-stream: batches are in flight
    rest, _ = await asyncio.wait_for(proc.communicate(), 10)
    acked.extend(line for line in rest.decode().split("\n") if line.strip())
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        stored = {str(r["event_id"]) for r in await conn.fetch("SELECT event_id FROM events")}
        seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM events ORDER BY seq")]
        head = await conn.fetchval("SELECT last_seq FROM event_head")
    finally:
        await conn.close()
    assert len(acked) >= 3000
    assert set(acked) <= stored, "an acknowledged event is missing"
    assert seqs == list(range(1, len(seqs) + 1)), "gap in seq"
    assert head == len(seqs)


async def test_follower_without_notifications_still_gets_everything(db_url: str) -> None:
    writer, _reader, pool = await _store(db_url)
    # a reader pointed at a DSN that cannot LISTEN still polls correctly
    blind = EventReader(pool, "postgresql://nobody@127.0.0.1:1/none")
    got: list[int] = []

    async def follow() -> None:
        async for page in blind.follow(0, poll_interval=0.05):
            got.extend(e.seq for e in page)
            if len(got) >= 20:
                return

    task = asyncio.create_task(follow())
    for i in range(20):
        await writer.append("p", [NewEvent("e", {"i": i}, event_id=uuid.uuid4())])
    await asyncio.wait_for(task, 10)
    assert got == list(range(1, 21))
    await writer.close()
    await pool.close()


async def test_unstorable_data_fails_its_own_append_and_the_writer_keeps_going(db_url: str) -> None:
    writer, reader, pool = await _store(db_url)
    ok = writer.append("s", [NewEvent("fine", {"text": "back\\u0000slash is fine"})])
    with pytest.raises(UnstorableEventError):
        await writer.append("s", [NewEvent("bad", {"text": "nul \x00 here"})])
    with pytest.raises(UnstorableEventError):
        await writer.append("s", [NewEvent("bad", {"text": "\ud800"})])
    assert await ok == [1]
    assert await writer.append("s", [NewEvent("after", {})]) == [2]
    assert [e.data for e in await reader.read_stream("s")] == [
        {"text": "back\\u0000slash is fine"},
        {},
    ]
    await writer.close()
    await pool.close()


async def test_pipelined_batches_keep_the_order_of_append_calls(db_url: str) -> None:
    """Log order is call order, also when conflicts and retries force the slow path
    while later batches are already in flight."""
    writer, reader, pool = await _store(db_url)
    first = NewEvent("seed", {})
    await writer.append("seed", [first])

    async def one(i: int) -> tuple[int, list[int] | BaseException]:
        await asyncio.sleep(0.001 * (i % 7))  # arrive in waves, so batches overlap
        try:
            if i % 97 == 0:  # a conflicting expectation: fails alone, planned path
                return i, await writer.append(f"o:{i}", [NewEvent("x", {"i": i})], 5)
            if i % 89 == 0:  # a retry of an old event: planned path, returns seq 1
                return i, await writer.append("seed", [first])
            return i, await writer.append(f"o:{i % 13}", [NewEvent("x", {"i": i})])
        except ConcurrencyError as exc:
            return i, exc

    results = await asyncio.gather(*(one(i) for i in range(1500)))
    await writer.close()
    by_wave: dict[int, list[tuple[int, int]]] = {}
    for i, outcome in results:
        if i % 97 == 0:
            assert isinstance(outcome, ConcurrencyError)
        elif i % 89 == 0:
            assert outcome == [1]
        else:
            assert isinstance(outcome, list)
            by_wave.setdefault(i % 7, []).append((i, outcome[0]))
    # within one wave the appends were called in index order, so their seqs ascend
    for wave in by_wave.values():
        seqs = [seq for _, seq in sorted(wave)]
        assert seqs == sorted(seqs)
    stored = [e async for e in reader.read_all(0)]
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    # per stream, versions follow seq order
    versions: dict[str, int] = {}
    for event in stored:
        assert event.stream_version == versions.get(event.stream_id, 0) + 1
        versions[event.stream_id] = event.stream_version
    await pool.close()


async def test_append_soon_queues_in_call_order_without_waiting(db_url: str) -> None:
    """``append_soon`` enqueues at once: appends queued back to back, with no await in
    between, share commits and are stored in the order they were queued."""
    writer, reader, pool = await _store(db_url)
    futures = [
        writer.append_soon([AppendPart(f"s:{i % 5}", [NewEvent("x", {"i": i})])])
        for i in range(300)
    ]
    assert writer.append_soon([AppendPart("empty", [])]).result() == []
    seqs = [seq for future in await asyncio.gather(*futures) for seq in future]
    assert seqs == list(range(1, 301))
    assert writer.batches < 300  # queued together, committed together
    stored = [e.data["i"] async for e in reader.read_all(0)]
    assert stored == list(range(300))
    await writer.close()
    await pool.close()
