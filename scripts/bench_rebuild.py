"""Benchmark: rebuild the projections from a realistic log, and replay one call.

1. Generates a log of ``--events`` (default 2,000,000) into a fresh database with COPY:
   sessions, ``rwi.command`` records with outcomes, ``observation`` records and the call
   domain's events for inbound customer legs answered by agent legs the app originates
   (claim, queue, ring, answer, bridge, hold, recording, hangup), concurrent calls
   interleaved in ``seq`` order, in the shapes ``rwi.domain`` writes them.
2. Times a full rebuild of every projection (as ``rwi rebuild`` runs it: each projection
   on its own connection, concurrently) and prints events/s.
3. Generates ``--replay-events`` (default 10,000,000; 0 to skip) the same way into a
   second database (indexes dropped during the COPY and built afterwards, as a bulk load
   would) and times ``rwi replay call`` (the library call: story query, context lookups,
   JSON decoding, the evolve fold) for random calls, warm.

Prints one JSON line per result; drops its databases at the end (``--keep`` to keep).
Not a test.

    .venv/bin/python scripts/bench_rebuild.py [--events 2000000] [--replay-events 10000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rwi.projections import PROJECTIONS, engine
from rwi.replay import replay_call
from rwi.store.database import asyncpg_dsn, migrate
from tests.support.databases import server_url, with_database

BASE_EPOCH = 1772438400  # 2026-03-02T08:00:00Z
CONNECTIONS = 40
CONTEXTS = ("sales", "support", "billing")
QUEUES = ("q-sales", "q-support")

Row = tuple[str, str, dict[str, Any], dict[str, Any] | None]  # stream, type, data, meta extra


class _Call:
    """One customer call (and its agent leg) as timed events."""

    def __init__(self, i: int, rng: random.Random) -> None:
        self.i = i
        self.rng = rng
        self.conn = f"conn{i % CONNECTIONS}"
        self.token = f"app{i % 4}"
        self.n = 0

    def command(self, action: str, params: dict[str, Any], data: Any = None) -> Row:
        self.n += 1
        outcome: dict[str, Any] = {"response": "success"}
        if data is not None:
            outcome["data"] = data
        body = {
            "connection_id": self.conn,
            "token": self.token,
            "action": action,
            "action_id": f"a{self.i}-{self.n}",
            "params": params,
            "outcome": outcome,
        }
        return (f"session:{self.conn}", "rwi.command", body, {"action_id": body["action_id"]})

    def events(self) -> Iterator[tuple[float, Row]]:
        rng = self.rng
        cid, agent = f"in-{self.i}", f"ag-{self.i}"
        ctx = CONTEXTS[self.i % len(CONTEXTS)]
        t = 0.0
        obs = "service"

        def at(dt: float, *rows: Row) -> Iterator[tuple[float, Row]]:
            nonlocal t
            t += dt
            for row in rows:
                yield t, row

        offered = {
            "call_id": cid,
            "context": ctx,
            "caller": f"sip:+3312345{self.i % 10000:04d}@trunk",
            "callee": "sip:100@pbx",
            "trunk": "trunk1",
        }
        yield from at(
            0.0,
            (
                obs,
                "observation",
                {"type": "sip.call.offered", **offered},
                {"observation": "sip.call.offered"},
            ),
            (
                f"call:{cid}",
                "call.incoming",
                {**offered, "direction": "inbound", "headers": {}},
                None,
            ),
        )
        if rng.random() < 0.08:  # abandoned while offered
            yield from at(
                rng.uniform(3, 25),
                (
                    obs,
                    "observation",
                    {"type": "sip.call.ended", "call_id": cid},
                    {"observation": "sip.call.ended"},
                ),
                (
                    f"call:{cid}",
                    "call.hangup",
                    {
                        "call_id": cid,
                        "reason": "canceled",
                        "sip_status": None,
                        "hangup_by": "remote",
                        "duration_secs": 0,
                    },
                    None,
                ),
            )
            return
        yield from at(
            rng.uniform(0.5, 3),
            self.command("call.answer", {"call_id": cid}, {"call_id": cid}),
            (
                f"call:{cid}",
                "call.claimed",
                {"call_id": cid, "connection_id": self.conn, "action": "call.answer"},
                None,
            ),
            (f"call:{cid}", "call.answered", {"call_id": cid}, None),
        )
        queue = rng.random() < 0.4
        if queue:
            q = QUEUES[self.i % 2]
            yield from at(
                0.2,
                self.command("queue.enqueue", {"call_id": cid, "queue_id": q}),
                (
                    f"call:{cid}",
                    "queue.joined",
                    {"call_id": cid, "queue_id": q, "position": 1 + self.i % 5},
                    None,
                ),
            )
            t += rng.uniform(5, 90)
        yield from at(
            0.1,
            self.command(
                "call.originate",
                {"call_id": agent, "destination": f"sip:agent{self.i % 50}@pbx"},
                {"call_id": agent},
            ),
            (
                f"call:{agent}",
                "call.originated",
                {
                    "call_id": agent,
                    "owner": self.conn,
                    "token": self.token,
                    "destination": f"sip:agent{self.i % 50}@pbx",
                    "caller_id": None,
                    "timeout_secs": 60,
                    "context": None,
                    "extra_headers": {},
                    "ringback": "local",
                },
                None,
            ),
        )
        yield from at(
            0.3,
            (
                obs,
                "observation",
                {"type": "sip.call.progress", "call_id": agent, "status": 180},
                {"observation": "sip.call.progress"},
            ),
            (f"call:{agent}", "call.ringing", {"call_id": agent, "sip_status": 180}, None),
        )
        yield from at(
            rng.uniform(2, 12),
            (
                obs,
                "observation",
                {"type": "sip.call.answered", "call_id": agent},
                {"observation": "sip.call.answered"},
            ),
            (f"call:{agent}", "call.answered", {"call_id": agent}, None),
        )
        if queue:
            yield from at(
                0.05,
                (
                    f"call:{cid}",
                    "queue.agent_connected",
                    {
                        "call_id": cid,
                        "queue_id": q,
                        "agent_id": f"agent{self.i % 50}",
                        "agent_call_id": agent,
                    },
                    None,
                ),
                (
                    f"call:{cid}",
                    "queue.left",
                    {"call_id": cid, "queue_id": q, "reason": "connected"},
                    None,
                ),
            )
        yield from at(
            0.1,
            self.command(
                "call.bridge", {"leg_a": cid, "leg_b": agent}, {"leg_a": cid, "leg_b": agent}
            ),
            (f"call:{cid}", "call.bridged", {"call_id": cid, "leg_a": cid, "leg_b": agent}, None),
        )
        if rng.random() < 0.3:
            rec = f"rec-{self.i}"
            yield from at(
                1.0,
                self.command("record.start", {"call_id": cid}, {"recording_id": rec}),
                (
                    f"call:{cid}",
                    "record.started",
                    {
                        "call_id": cid,
                        "recording_id": rec,
                        "mode": "mixed",
                        "path": f"rec/{rec}.wav",
                    },
                    None,
                ),
            )
        t += rng.uniform(20, 240)
        if rng.random() < 0.5:
            yield from at(
                0.0,
                self.command("call.hold", {"call_id": cid}, {"call_id": cid}),
                (f"call:{cid}", "media.hold.started", {"call_id": cid, "music": None}, None),
            )
            yield from at(
                rng.uniform(5, 120),
                self.command("call.unhold", {"call_id": cid}, {"call_id": cid}),
                (f"call:{cid}", "media.hold.stopped", {"call_id": cid}, None),
            )
        yield from at(
            rng.uniform(10, 200),
            (
                obs,
                "observation",
                {"type": "sip.call.ended", "call_id": cid},
                {"observation": "sip.call.ended"},
            ),
            (
                f"call:{agent}",
                "call.unbridged",
                {"call_id": agent, "leg_a": cid, "leg_b": agent, "reason": "hangup"},
                None,
            ),
            (
                f"call:{cid}",
                "call.hangup",
                {
                    "call_id": cid,
                    "reason": "caller",
                    "sip_status": None,
                    "hangup_by": "remote",
                    "duration_secs": round(t, 3),
                },
                None,
            ),
        )
        yield from at(
            0.5,
            self.command("call.hangup", {"call_id": agent}, {"call_id": agent}),
            (
                f"call:{agent}",
                "call.hangup",
                {
                    "call_id": agent,
                    "reason": "rwi",
                    "sip_status": None,
                    "hangup_by": "rwi",
                    "duration_secs": round(t, 3),
                },
                None,
            ),
        )


def timeline(
    total_events: int, seed: int = 7, calls_per_second: float = 4.0
) -> Iterator[tuple[float, Row]]:
    """(seconds since the start, event) in time order, until ``total_events``."""
    rng = random.Random(seed)
    emitted = 0
    for c in range(CONNECTIONS):
        conn = f"conn{c}"
        yield (
            0.0,
            (
                f"session:{conn}",
                "session.opened",
                {"connection_id": conn, "token": f"app{c % 4}", "remote": "127.0.0.1"},
                None,
            ),
        )
        yield (
            0.0,
            (
                f"session:{conn}",
                "session.subscribed",
                {"connection_id": conn, "contexts": list(CONTEXTS)},
                None,
            ),
        )
        emitted += 2
    chunk = 500  # calls are merged in chunks; calls of one chunk overlap in time
    i = 0
    while emitted < total_events:
        pending: list[tuple[float, int, Row]] = []
        for k in range(i, i + chunk):
            start = k / calls_per_second
            for n, (dt, row) in enumerate(_Call(k, rng).events()):
                pending.append((start + dt, k * 1000 + n, row))
        pending.sort(key=lambda p: (p[0], p[1]))
        for offset, _, row in pending:
            yield offset, row
            emitted += 1
            if emitted >= total_events:
                return
        i += chunk


class _Clock:
    """Fast ISO timestamps (the wire's ``...Z`` form) from millisecond offsets."""

    def __init__(self) -> None:
        self._seconds: dict[int, str] = {}

    def iso(self, ms: int) -> str:
        second, milli = divmod(ms, 1000)
        text = self._seconds.get(second)
        if text is None:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(BASE_EPOCH + second))
            self._seconds[second] = text
        return f"{text}.{milli:03d}Z"


def _escape(text: str) -> str:
    if "\\" in text or "\t" in text or "\n" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


async def copy_log(conn: asyncpg.Connection, total_events: int, seed: int = 7) -> int:
    """COPY a synthetic log of ``total_events`` into an empty ``events`` table."""
    versions: dict[str, int] = {}
    clock = _Clock()
    count = 0

    async def source() -> AsyncIterator[bytes]:
        nonlocal count
        lines: list[str] = []
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        seq = 0
        for offset, (stream, etype, data, extra) in timeline(total_events, seed):
            seq += 1
            version = versions.get(stream, 0) + 1
            versions[stream] = version
            ms = int(offset * 1000)
            ts = clock.iso(ms)
            meta = (
                f'{{"ts":"{ts}"' + "".join(f',"{k}":"{v}"' for k, v in (extra or {}).items()) + "}"
            )
            lines.append(
                f"{seq}\t00000000-0000-4000-8000-{seq:012x}\t{stream}\t{version}\t{etype}\t"
                f"{_escape(dumps(data))}\t{meta}\t{clock.iso(ms + 1 + seq % 3)}\n"
            )
            if len(lines) >= 20000:
                yield "".join(lines).encode()
                lines = []
        if lines:
            yield "".join(lines).encode()
        count = seq

    await conn.copy_to_table(
        "events",
        source=source(),
        columns=[
            "seq",
            "event_id",
            "stream_id",
            "stream_version",
            "type",
            "data",
            "meta",
            "recorded_at",
        ],
    )
    await conn.execute("UPDATE event_head SET last_seq = $1 WHERE id = 1", count)
    return count


# --- databases ---------------------------------------------------------------------------


async def create_database(name: str) -> str:
    admin = await asyncpg.connect(server_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url(), name)
    await migrate(url)
    return url


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(server_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def generate(url: str, events: int, bulk: bool) -> float:
    """Fill the log; with ``bulk`` the events indexes are dropped and built afterwards."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        started = time.perf_counter()
        constraints = await conn.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE conrelid = 'events'::regclass AND contype IN ('p', 'u')"
        )
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events' "
            "AND indexname <> ALL($1::text[])",
            [c["conname"] for c in constraints],
        )
        if bulk:
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            for constraint in constraints:
                await conn.execute(f'ALTER TABLE events DROP CONSTRAINT "{constraint["conname"]}"')
        await copy_log(conn, events)
        if bulk:
            await conn.execute("SET maintenance_work_mem = '1GB'")
            for constraint in constraints:
                name, definition = constraint["conname"], constraint["def"]
                await conn.execute(f'ALTER TABLE events ADD CONSTRAINT "{name}" {definition}')
            for index in indexes:
                await conn.execute(index["indexdef"])
        await conn.execute("VACUUM ANALYZE events")
        return time.perf_counter() - started
    finally:
        await conn.close()


# --- measurements ------------------------------------------------------------------------


async def bench_rebuild(url: str, events: int) -> dict[str, Any]:
    dsn = asyncpg_dsn(url)
    conns = [await asyncpg.connect(dsn) for _ in PROJECTIONS]

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(dsn)

    try:
        started = time.perf_counter()
        results = await asyncio.gather(
            *(
                engine.rebuild(c, p, connect=connect)
                for c, p in zip(conns, PROJECTIONS.values(), strict=True)
            )
        )
        seconds = time.perf_counter() - started
    finally:
        for c in conns:
            await c.close()
    return {
        "bench": "rebuild",
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds),
        "projections": {r.name: {"rows": r.rows, "seconds": round(r.seconds, 3)} for r in results},
    }


async def bench_replay(url: str, events: int, samples: int) -> dict[str, Any]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        last = await conn.fetchval(
            "SELECT max(substr(stream_id, 9)::int) FROM events WHERE stream_id LIKE 'call:in-%' "
            "AND seq > (SELECT last_seq - 100000 FROM event_head)"
        )
        rng = random.Random(3)
        ids = [f"in-{rng.randrange(0, int(last))}" for _ in range(samples)]
        await replay_call(conn, ids[0])  # warm the plan cache
        times, steps = [], []
        for call_id in ids:
            started = time.perf_counter()
            story = await replay_call(conn, call_id)
            times.append((time.perf_counter() - started) * 1000)
            steps.append(len(story.steps))
    finally:
        await conn.close()
    times.sort()
    return {
        "bench": "replay_call",
        "events": events,
        "ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        "max_ms": round(times[-1], 2),
        "calls": samples,
        "steps_per_call": round(statistics.mean(steps), 1),
    }


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--replay-events", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=50, help="calls replayed")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    names = [f"rwi_bench_rebuild_{run}", f"rwi_bench_replay_{run}"]
    try:
        url = await create_database(names[0])
        seconds = await generate(url, args.events, bulk=False)
        emit({"bench": "generate", "events": args.events, "seconds": round(seconds, 1)})
        emit(await bench_rebuild(url, args.events))
        if not args.keep:
            await drop_database(names[0])
        if args.replay_events:
            url = await create_database(names[1])
            seconds = await generate(url, args.replay_events, bulk=True)
            emit({"bench": "generate", "events": args.replay_events, "seconds": round(seconds, 1)})
            emit(await bench_replay(url, args.replay_events, args.samples))
    finally:
        if not args.keep:
            for name in names:
                await drop_database(name)


if __name__ == "__main__":
    asyncio.run(main())
