"""Call-history projections on a real log: every call event of the contract, folded.

The events are appended with the group-commit writer in the shapes the call domain
emits (``rwi.domain``), with decision times (``meta.ts``) chosen by the test, so every
timestamp and duration is asserted exactly.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from rwi.projections import PROJECTIONS, engine
from rwi.projections.runner import ProjectionRunner
from rwi.projections.verify import check_projection, describe
from rwi.store import EventReader, NewEvent
from rwi.store.database import asyncpg_dsn, create_pool
from tests.integration.projections.contact_centre import contact_centre
from tests.integration.projections.logbook import Logbook, at

pytestmark = pytest.mark.integration


def ts(seconds: float) -> datetime:
    return datetime.fromisoformat(at(seconds))


def record(row: asyncpg.Record, *names: str) -> dict[str, Any]:
    return {n: row[n] for n in names}


async def assert_contact_centre(conn: asyncpg.Connection) -> None:
    calls = {(r["call_id"], r["leg_seq"]): r for r in await conn.fetch("SELECT * FROM calls")}
    by_id: dict[str, list[asyncpg.Record]] = {}
    for (cid, _), row in sorted(calls.items()):
        by_id.setdefault(cid, []).append(row)
    assert sorted(by_id) == ["a1", "b1", "c1", "c9", "s1"]

    (c1,) = by_id["c1"]
    assert dict(c1) | {"leg_seq": 0, "last_seq": 0} == {
        "call_id": "c1", "leg_seq": 0, "direction": "inbound", "caller": "sip:100@x",
        "callee": "sip:200@y", "context": "sales", "trunk": "t1", "owner_token": "app",
        "state": "ended", "created_at": ts(1), "answered_at": ts(3), "ended_at": ts(170),
        "ring_secs": Decimal("2.000"), "talk_secs": Decimal("167.000"), "hangup_reason": "caller",
        "sip_status": None, "hangup_by": "remote", "bridged_with": None,
        "transfer_chain": ["sip:300@y"], "queue_id": "q1", "agent_id": "agent7",
        "recording_ids": ["r1"], "hold_count": 1, "last_seq": 0,
    }  # fmt: skip
    (a1,) = by_id["a1"]
    assert record(a1, "direction", "callee", "caller", "owner_token", "state", "created_at",
                  "answered_at", "ended_at", "ring_secs", "talk_secs", "hangup_reason",
                  "hangup_by") == {
        "direction": "outbound", "callee": "sip:7@pbx", "caller": None, "owner_token": "app",
        "state": "ended", "created_at": ts(10), "answered_at": ts(15), "ended_at": ts(171),
        "ring_secs": Decimal("5.000"), "talk_secs": Decimal("156.000"),
        "hangup_reason": "rwi", "hangup_by": "rwi",
    }  # fmt: skip
    (b1,) = by_id["b1"]
    assert record(b1, "state", "caller", "context", "answered_at", "ring_secs", "talk_secs",
                  "hangup_reason", "sip_status") == {
        "state": "ended", "caller": "sip:me@pbx", "context": "sales", "answered_at": None,
        "ring_secs": Decimal("4.000"), "talk_secs": None, "hangup_reason": "busy",
        "sip_status": 486,
    }  # fmt: skip
    (s1,) = by_id["s1"]
    assert record(s1, "state", "owner_token", "answered_at") == {
        "state": "answered",
        "owner_token": "boss",
        "answered_at": ts(97),
    }
    first, second = by_id["c9"]
    assert record(first, "caller", "state", "sip_status", "hangup_reason", "ended_at") == {
        "caller": "a", "state": "ended", "sip_status": 487, "hangup_reason": "canceled",
        "ended_at": ts(305),
    }  # fmt: skip
    assert record(second, "caller", "state", "created_at", "ended_at") == {
        "caller": "c",
        "state": "ringing",
        "created_at": ts(400),
        "ended_at": None,
    }
    assert second["leg_seq"] > first["leg_seq"]

    segments = [
        record(
            r,
            "call_id",
            "kind",
            "other_call_id",
            "detail",
            "started_at",
            "ended_at",
            "duration_secs",
        )
        for r in await conn.fetch("SELECT * FROM call_segments ORDER BY started_seq, call_id")
    ]
    assert segments == [
        {"call_id": "c1", "kind": "queue", "other_call_id": None, "detail": "q1",
         "started_at": ts(4), "ended_at": ts(15), "duration_secs": Decimal("11.000")},
        {"call_id": "a1", "kind": "bridge", "other_call_id": "c1", "detail": None,
         "started_at": ts(16), "ended_at": ts(170), "duration_secs": Decimal("154.000")},
        {"call_id": "c1", "kind": "bridge", "other_call_id": "a1", "detail": None,
         "started_at": ts(16), "ended_at": ts(170), "duration_secs": Decimal("154.000")},
        {"call_id": "c1", "kind": "hold", "other_call_id": None, "detail": "moh.wav",
         "started_at": ts(60), "ended_at": ts(90), "duration_secs": Decimal("30.000")},
        {"call_id": "a1", "kind": "supervised", "other_call_id": "s1", "detail": "listen",
         "started_at": ts(100), "ended_at": ts(110), "duration_secs": Decimal("10.000")},
        {"call_id": "s1", "kind": "supervisor", "other_call_id": "a1", "detail": "listen",
         "started_at": ts(100), "ended_at": ts(110), "duration_secs": Decimal("10.000")},
        {"call_id": "a1", "kind": "supervised", "other_call_id": "s1", "detail": "whisper",
         "started_at": ts(110), "ended_at": ts(130), "duration_secs": Decimal("20.000")},
        {"call_id": "s1", "kind": "supervisor", "other_call_id": "a1", "detail": "whisper",
         "started_at": ts(110), "ended_at": ts(130), "duration_secs": Decimal("20.000")},
        {"call_id": "c1", "kind": "transfer", "other_call_id": None, "detail": "sip:300@y",
         "started_at": ts(150), "ended_at": ts(152), "duration_secs": Decimal("2.000")},
    ]  # fmt: skip

    (rec,) = await conn.fetch("SELECT * FROM recordings")
    assert record(rec, "recording_id", "call_id", "mode", "path", "state", "started_at",
                  "stopped_at", "duration_secs", "paused_secs", "error", "reason") == {
        "recording_id": "r1", "call_id": "c1", "mode": "mixed", "path": "rec/r1.wav",
        "state": "stopped", "started_at": ts(20), "stopped_at": ts(160),
        "duration_secs": Decimal("130.5"), "paused_secs": Decimal("10.000"), "error": None,
        "reason": "rwi",
    }  # fmt: skip
    assert rec["paused_intervals"] == f'[{{"to": "{at(40)}", "from": "{at(30)}"}}]'

    (entry,) = await conn.fetch("SELECT * FROM queue_entries")
    assert record(entry, "call_id", "queue_id", "priority", "position", "joined_at",
                  "connected_at", "left_at", "wait_secs", "left_reason", "agent_id",
                  "agent_call_id") == {
        "call_id": "c1", "queue_id": "q1", "priority": 5, "position": 2, "joined_at": ts(4),
        "connected_at": ts(15), "left_at": ts(15), "wait_secs": Decimal("11.000"),
        "left_reason": "connected", "agent_id": "agent7", "agent_call_id": "a1",
    }  # fmt: skip

    commands = await conn.fetch("SELECT * FROM rwi_commands ORDER BY seq")
    assert [(r["action"], r["call_id"], r["response"], r["error_code"]) for r in commands] == [
        ("call.answer", "c1", "success", None),
        ("call.originate", "a1", "success", None),
        ("call.bridge", "c1", "success", None),
        ("call.originate", "s1", "success", None),
        ("call.hangup", "a1", "success", None),
        ("call.originate", "b1", "success", None),
        ("call.answer", "zz", "error", "call_not_found"),
    ]
    first_command = commands[0]
    assert record(first_command, "connection_id", "token", "received_at", "replayed") == {
        "connection_id": "conn1",
        "token": "app",
        "received_at": ts(3),
        "replayed": False,
    }
    assert first_command["params"] == '{"call_id": "c1"}'
    assert first_command["latency_ms"] == Decimal(
        round((first_command["recorded_at"] - ts(3)).total_seconds() * 1000, 3)
    ).quantize(Decimal("0.001"))


async def test_a_rebuild_folds_every_call_event_of_the_contract(db_url: str) -> None:
    log = await Logbook.open(db_url)
    await contact_centre(log)
    await log.close()
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        for projection in PROJECTIONS.values():
            rebuilt = await engine.rebuild(conn, projection)
            assert rebuilt.position == log.seqs[-1]
        await assert_contact_centre(conn)
        positions = await engine.positions(conn, list(PROJECTIONS))
        assert positions == dict.fromkeys(PROJECTIONS, log.seqs[-1])
    finally:
        await conn.close()


@pytest.mark.parametrize("step", [1, 4])
async def test_following_page_by_page_gives_the_same_tables_as_a_rebuild(
    db_url: str, step: int
) -> None:
    log = await Logbook.open(db_url)
    await contact_centre(log)
    await log.close()
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        head = log.seqs[-1]
        for upto in [*range(step, head, step), head]:
            for projection in PROJECTIONS.values():
                assert await engine.advance(conn, projection, upto) == upto
        await assert_contact_centre(conn)
        for projection in PROJECTIONS.values():
            check = await check_projection(conn, projection)
            assert check.ok, describe(check)
            assert check.position == head
        # the check left nothing behind
        schemas = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rwi_verify_%'"
        )
        assert schemas == 0
    finally:
        await conn.close()


async def test_a_tampered_table_is_reported_by_the_check(db_url: str) -> None:
    log = await Logbook.open(db_url)
    await contact_centre(log)
    await log.close()
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        for projection in PROJECTIONS.values():
            await engine.rebuild(conn, projection)
        await conn.execute("UPDATE calls SET state = 'answered' WHERE call_id = 'b1'")
        await conn.execute("DELETE FROM rwi_commands WHERE action = 'call.bridge'")
        calls = await check_projection(conn, PROJECTIONS["calls"])
        (diff,) = [t for t in calls.tables if not t.ok]
        assert (diff.table, diff.missing_count, diff.unexpected_count) == ("calls", 1, 1)
        assert diff.missing[0]["state"] == "ended" and diff.unexpected[0]["state"] == "answered"
        commands = await check_projection(conn, PROJECTIONS["rwi_commands"])
        (diff,) = commands.tables
        assert (diff.missing_count, diff.unexpected_count) == (1, 0)
        assert diff.missing[0]["action"] == "call.bridge"
        assert "table calls differs" in "\n".join(describe(calls))
    finally:
        await conn.close()


async def test_the_runner_follows_the_log_and_carries_on_after_a_rebuild(db_url: str) -> None:
    log = await Logbook.open(db_url)
    pool = await create_pool(db_url, 2)
    dsn = asyncpg_dsn(db_url)
    runner = ProjectionRunner(EventReader(pool, dsn), dsn, page=3, poll_interval=0.05)
    await runner.start()
    conn = await asyncpg.connect(dsn)
    try:
        await contact_centre(log)
        async with asyncio.timeout(15):
            await runner.wait_for(log.seqs[-1])
        await assert_contact_centre(conn)
        # a rebuild while the runner runs, then more events: both end up in the tables
        rebuilt = await engine.rebuild(conn, PROJECTIONS["calls"])
        await log.call("c9", "call.answered", 402)
        await log.call("c9", "call.hangup", 410, reason="caller", hangup_by="remote")
        async with asyncio.timeout(15):
            await runner.wait_for(log.seqs[-1])
        assert rebuilt.position < log.seqs[-1]
        row = await conn.fetchrow(
            "SELECT state, talk_secs FROM calls WHERE call_id = 'c9' ORDER BY leg_seq DESC LIMIT 1"
        )
        assert dict(row) == {"state": "ended", "talk_secs": Decimal("8.000")}
        for projection in PROJECTIONS.values():
            check = await check_projection(conn, projection)
            assert check.ok, describe(check)
        assert runner.errors == 0
    finally:
        await runner.stop()
        await conn.close()
        await pool.close()
        await log.close()


async def test_odd_values_never_stop_a_projection(db_url: str) -> None:
    log = await Logbook.open(db_url)
    await log.emit("session:x", "rwi.command", {"connection_id": "x", "token": "t",
                   "action": "call.answer", "params": {"call_id": "q" * 60000},
                   "outcome": {"response": "error"}}, 1)  # fmt: skip
    incoming = {"call_id": "w1", "caller": 5, "context": ["x"]}
    await log.writer.append("call:w1", [NewEvent("call.incoming", incoming, {"ts": "yesterday"})])
    await log.call("w1", "call.hangup", 3, sip_status="abc", reason={"nested": True})
    await log.emit("session:x", "rwi.command", {"params": [1, 2], "outcome": None}, 4)
    await log.close()
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        for projection in PROJECTIONS.values():
            await engine.rebuild(conn, projection)
        row = await conn.fetchrow("SELECT * FROM calls")
        assert record(row, "call_id", "caller", "context", "created_at", "state", "sip_status",
                      "hangup_reason") == {
            "call_id": "w1", "caller": "5", "context": '["x"]', "created_at": None,
            "state": "ended", "sip_status": None, "hangup_reason": '{"nested": true}',
        }  # fmt: skip
        commands = await conn.fetch("SELECT call_id, received_at FROM rwi_commands ORDER BY seq")
        assert [(r["call_id"], r["received_at"]) for r in commands] == [
            ("q" * 200, ts(1)),
            (None, ts(4)),
        ]
    finally:
        await conn.close()
