"""Benchmark: durable appends/s with 1, 16 and 48 concurrent writers, and a follower
that proves zero gaps. Prints one JSON line per writer count. Not a test.

Each writer appends in a loop and awaits every append (as a command awaits durability
before its reply); ``--events-per-append`` sets how many events one append carries
(a command's record plus the events it caused is typically 2-4).

    .venv/bin/python scripts/bench_store.py [--seconds 5] [--events-per-append 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sys
import time
import uuid
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rwi.store import EventReader, GroupCommitWriter, NewEvent
from rwi.store.database import asyncpg_dsn, create_pool, migrate
from tests.support.databases import server_url, with_database


def _follow(
    dsn: str,
    start_seq: int,
    targets: multiprocessing.Queue[int],
    results: multiprocessing.Queue[tuple[int, int]],
) -> None:
    """Follow the log from ``start_seq``; report (events seen, gaps) once ``target`` are seen."""

    async def follow() -> tuple[int, int]:
        pool = await create_pool(dsn, 2)
        reader = EventReader(pool, dsn)
        followed = gaps = 0
        expected = start_seq + 1
        target: int | None = None
        checkpoint = start_seq
        while target is None or followed < target:
            page = await reader.read(checkpoint, 5000)
            for event in page:
                if event.seq != expected:
                    gaps += 1
                expected = event.seq + 1
                followed += 1
            if page:
                checkpoint = page[-1].seq
            else:
                await asyncio.sleep(0.02)
            if target is None and not targets.empty():
                target = targets.get()
        await pool.close()
        return followed, gaps

    results.put(asyncio.run(follow()))


async def run(url: str, writers: int, seconds: float, per_append: int) -> dict[str, object]:
    await migrate(url)
    pool = await create_pool(url, 4)
    dsn = asyncpg_dsn(url)
    writer = GroupCommitWriter(dsn)
    await writer.start()
    reader = EventReader(pool, dsn)
    start_seq = await reader.head()
    stop_at = time.perf_counter() + seconds
    appended = 0

    async def write(n: int) -> None:
        nonlocal appended
        i = 0
        while time.perf_counter() < stop_at:
            events = [NewEvent("bench.tick", {"writer": n, "i": i + k}) for k in range(per_append)]
            await writer.append(f"bench:{writers}:{n}", events)
            appended += per_append
            i += per_append

    # The follower runs in its own process, as a projection or another service would,
    # so checking every event does not take the writers' interpreter.
    targets: multiprocessing.Queue[int] = multiprocessing.Queue()
    results: multiprocessing.Queue[tuple[int, int]] = multiprocessing.Queue()
    follower = multiprocessing.Process(target=_follow, args=(dsn, start_seq, targets, results))
    follower.start()
    began = time.perf_counter()
    await asyncio.gather(*(write(n) for n in range(writers)))
    elapsed = time.perf_counter() - began
    targets.put(appended)
    followed, gaps = await asyncio.to_thread(results.get, True, 120)
    follower.join(10)
    batches = writer.batches
    await writer.close()
    await pool.close()
    return {
        "bench": "store",
        "writers": writers,
        "events_per_s": round(appended / elapsed),
        "gaps": gaps,
        "events": appended,
        "followed": followed,
        "events_per_append": per_append,
        "events_per_commit": round(appended / max(batches, 1), 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--events-per-append", type=int, default=1)
    parser.add_argument("--writers", default="1,16,48")
    parser.add_argument("--database-url", default=server_url())
    args = parser.parse_args()
    for count in (int(w) for w in args.writers.split(",")):
        name = f"rwi_bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(asyncpg_dsn(args.database_url))
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            result = await run(
                with_database(args.database_url, name),
                count,
                args.seconds,
                args.events_per_append,
            )
            print(json.dumps(result), flush=True)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
