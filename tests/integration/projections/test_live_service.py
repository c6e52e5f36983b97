"""Projections and replay against the real running service (what it emits today)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal

import asyncpg
import pytest

from rwi.domain import Observation
from rwi.replay import replay_call, state_at
from rwi.store.database import asyncpg_dsn
from tests.support.client import RwiClient
from tests.support.determinism import assert_deterministic
from tests.support.service import make_config, running_service

pytestmark = pytest.mark.integration


async def test_calls_commands_and_replay_from_the_running_service(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url)
        await client.request("session.subscribe", {"contexts": ["sales"]})
        offered = {"context": "sales", "caller": "sip:100@x", "callee": "sip:200@y", "trunk": "t1"}
        await svc.service.observe(Observation("sip.call.offered", {"call_id": "c1", **offered}))
        await client.event("call.incoming", call_id="c1")
        await svc.service.observe(Observation("sip.call.offered", {"call_id": "c2", **offered}))
        await svc.service.observe(
            Observation("sip.call.ended", {"call_id": "c1", "sip_status": 487})
        )
        await client.event("call.hangup", call_id="c1")
        reply = await client.request("session.list_calls")
        assert reply["response"] == "success"

        runner = svc.runtime.projections
        assert runner is not None
        async with asyncio.timeout(10):
            head = await runner.caught_up()
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        try:
            times = {
                (r["type"], r["call_id"]): datetime.fromisoformat(r["ts"])
                for r in await conn.fetch(
                    "SELECT type, data->>'call_id' AS call_id, meta->>'ts' AS ts FROM events "
                    "WHERE type LIKE 'call.%'"
                )
            }
            rows = {r["call_id"]: r for r in await conn.fetch("SELECT * FROM calls")}
            c1, c2 = rows["c1"], rows["c2"]
            assert {k: c1[k] for k in ("direction", "caller", "callee", "context", "trunk")} == {
                "direction": "inbound",
                "caller": "sip:100@x",
                "callee": "sip:200@y",
                "context": "sales",
                "trunk": "t1",
            }
            assert (c1["state"], c1["hangup_reason"], c1["sip_status"], c1["hangup_by"]) == (
                "ended",
                "canceled",
                487,
                "remote",
            )
            assert c1["created_at"] == times[("call.incoming", "c1")]
            assert c1["ended_at"] == times[("call.hangup", "c1")]
            ring = (c1["ended_at"] - c1["created_at"]).total_seconds()
            assert c1["ring_secs"] == Decimal(f"{ring:.3f}")
            assert c1["talk_secs"] is None and c1["answered_at"] is None
            assert (c2["state"], c2["ended_at"]) == ("offered", None)

            commands = await conn.fetch("SELECT * FROM rwi_commands ORDER BY seq")
            assert [(r["action"], r["token"], r["response"]) for r in commands] == [
                ("session.subscribe", "app", "success"),
                ("session.list_calls", "app", "success"),
            ]
            assert all(r["latency_ms"] >= 0 for r in commands)
            assert commands[0]["received_at"] is not None

            story = await replay_call(conn, "c1")
            own = [s for s in story.steps if not s.context]
            assert [(s.kind, s.event.type) for s in own] == [
                ("observation", "observation"),
                ("event", "call.incoming"),
                ("observation", "observation"),
                ("event", "call.hangup"),
            ]
            assert own[0].event.data["type"] == "sip.call.offered"
            assert own[1].call is not None and own[1].call["state"] == "offered"
            assert own[3].call is None  # ended: no longer in the live state
            # the call's state after each step is the full fold's state at that seq
            for step in own:
                full, _ = await state_at(conn, step.event.seq)
                assert full.snapshot()["calls"].get("c1") == step.call
            assert head >= own[-1].event.seq
        finally:
            await conn.close()
        await client.close()
        await assert_deterministic(svc)


async def test_observe_soon_keeps_order_and_pushes_only_what_is_stored(db_url: str) -> None:
    """Observations queued back to back (the SIP side's way) are decided in call order,
    stored in that order, and each event reaches the client only once stored."""
    async with running_service(make_config(db_url)) as svc:
        client = await RwiClient.connect(svc.url)
        await client.request("session.subscribe", {"contexts": ["sales"]})
        offered = {"context": "sales", "caller": "sip:1@x", "callee": "sip:2@y", "trunk": "t"}
        futures = []
        for n in range(20):
            futures.append(
                svc.service.observe_soon(
                    Observation("sip.call.offered", {"call_id": f"c{n}", **offered})
                )
            )
            futures.append(
                svc.service.observe_soon(
                    Observation("sip.call.ended", {"call_id": f"c{n}", "sip_status": 487})
                )
            )
        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        try:
            for n in range(20):
                frame = await client.event("call.hangup", call_id=f"c{n}")
                # pushed only after its commit: it is in the log when it arrives
                assert (
                    await conn.fetchval("SELECT count(*) FROM events WHERE seq = $1", frame["seq"])
                    == 1
                )
            stored = await asyncio.gather(*futures)
            order = [
                (r["type"], r["call_id"])
                for r in await conn.fetch(
                    "SELECT type, data->>'call_id' AS call_id FROM events "
                    "WHERE type IN ('call.incoming', 'call.hangup') ORDER BY seq"
                )
            ]
            head = await conn.fetchval("SELECT last_seq FROM event_head")
        finally:
            await conn.close()
        assert order == [
            (kind, f"c{n}") for n in range(20) for kind in ("call.incoming", "call.hangup")
        ]
        assert [seqs[0] for seqs in stored] == sorted(seqs[0] for seqs in stored)
        assert stored[-1][-1] <= head
        assert svc.service.state.calls == {}
