"""``rwi.client`` end to end: real service with SIP, SIPp phones. Typed call commands and
errors, events as iterator and waits, and the reconnect guarantees: a connection cut
during a call loses no event and repeats none, and a retried originate places one call."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from rwi.client import AlreadyOwned, CallExists, CallNotFound, Event, InvalidState, connect
from rwi.client.session import Client, _Link
from rwi.domain.delivery import PUSHED
from rwi.store.database import asyncpg_dsn
from tests.e2e.pbx import RING_180, Sipp, pbx, sip_tables
from tests.support.sipp_templates import call_sipp

pytestmark = pytest.mark.e2e

#: rings for a while before answering: a window to cut the connection in
SLOW_RING = RING_180 + '\n  <pause milliseconds="1500"/>'


def uas(tmp: Path, ring: str = RING_180) -> Sipp:
    return Sipp(tmp, "uas_call", ring=ring, sdp_port="[media_port]", pt=0, codec="PCMU")


async def logged(db_url: str, call_id: str) -> list[tuple[int, str]]:
    """The pushed events of ``call_id`` in the log: what the owner is entitled to."""
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch(
            "SELECT seq, type FROM events WHERE stream_id = $1 ORDER BY seq", f"call:{call_id}"
        )
    finally:
        await conn.close()
    return [(r["seq"], r["type"]) for r in rows if r["type"] in PUSHED]


async def commands(db_url: str, action: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        rows = await conn.fetch(
            "SELECT data FROM events WHERE type = 'rwi.command' AND data->>'action' = $1 "
            "ORDER BY seq",
            action,
        )
    finally:
        await conn.close()
    return [json.loads(r["data"]) for r in rows]


def seen(events: list[Event], call_id: str) -> list[tuple[int, str]]:
    return [(e.seq, e.name) for e in events if e.call_id == call_id]


async def test_typed_call_commands_errors_events_and_waits(db_url: str, tmp_path: Path) -> None:
    phone = uas(tmp_path)
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, trunk=phone)) as rig:
        rig.sipps.append(phone)
        await phone.start()
        async with (
            connect(rig.svc.url, "app-token") as rwi,
            connect(rig.svc.url, "app2-token") as other,
        ):
            streamed: list[Event] = []

            async def consume() -> None:
                async for event in rwi.events:
                    streamed.append(event)
                    if event.name == "call.hangup":
                        return

            consumer = asyncio.create_task(consume())
            data = await rwi.call.originate(
                call_id="leg_a", destination="sip:100@trunk", timeout_secs=20
            )
            assert data == {"call_id": "leg_a"}
            answered = await rwi.events.wait("call.answered", call_id="leg_a", within=15)
            assert answered.call_id == "leg_a" and answered.seq > 0
            with pytest.raises(CallExists):
                await rwi.call.originate(call_id="leg_a", destination="sip:100@trunk")
            with pytest.raises(AlreadyOwned):
                await other.call.hangup(call_id="leg_a")
            with pytest.raises(CallNotFound):
                await rwi.call.hangup(call_id="nobody")
            with pytest.raises(InvalidState):
                await rwi.call.unhold(call_id="leg_a")
            assert await rwi.call.hold(call_id="leg_a") == {"call_id": "leg_a"}
            await rwi.events.wait("media.hold.started", call_id="leg_a")
            await rwi.call.unhold(call_id="leg_a")
            calls = (await rwi.session.list_calls())["calls"]
            assert [(c["call_id"], c["state"]) for c in calls] == [("leg_a", "answered")]
            await rwi.call.hangup(call_id="leg_a")
            hangup = await rwi.events.wait("call.hangup", call_id="leg_a", reason="rwi")
            assert hangup.data["hangup_by"] == "rwi"
            await asyncio.wait_for(consumer, 10)
        assert await phone.finish() == 0
        # the iterator saw exactly what the log holds for the call, in order
        assert seen(streamed, "leg_a") == await logged(db_url, "leg_a")
        assert [name for _, name in seen(streamed, "leg_a")] == [
            "call.ringing",
            "call.answered",
            "media.hold.started",
            "media.hold.stopped",
            "call.hangup",
        ]


class HeldBack(Client):
    """Reconnects only when the test opens the gate."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.gate = asyncio.Event()
        self.gate.set()

    async def _handshake(self, link: _Link, *, resume: bool, give_up: bool) -> None:
        await self.gate.wait()
        await super()._handshake(link, resume=resume, give_up=give_up)


async def until(condition: Any, within: float = 15.0) -> None:
    """Poll ``condition`` (a look at the service's live state) for at most ``within``."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def test_cut_connections_during_a_call_miss_and_repeat_no_event(
    db_url: str, tmp_path: Path
) -> None:
    phone = uas(tmp_path, SLOW_RING)
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, trunk=phone)) as rig:
        rig.sipps.append(phone)
        await phone.start()
        state = rig.svc.service.state
        rwi = HeldBack(rig.svc.url, "app-token", retry_delay=0.05)
        await rwi.start()
        try:
            await rwi.call.originate(call_id="leg_a", destination="sip:100@trunk")
            await rwi.events.wait("call.ringing", call_id="leg_a", within=15)
            # cut while it rings, and come back only once the call is answered: the
            # client must get call.answered from the log
            rwi.gate.clear()
            rwi.drop_connection()
            await until(lambda: state.calls["leg_a"].state == "answered")
            assert not any(e.name == "call.answered" for e in rwi.events.received)
            rwi.gate.set()
            await rwi.events.wait("call.answered", call_id="leg_a", within=15)
            assert rwi.reconnects >= 1
            # cut during a burst of activity: commands in flight and events on the wire
            for _ in range(3):
                hold = asyncio.create_task(rwi.call.hold(call_id="leg_a"))
                await asyncio.sleep(0)
                rwi.drop_connection()
                await asyncio.wait_for(hold, 15)
                await rwi.call.unhold(call_id="leg_a")
            await rwi.call.hangup(call_id="leg_a")
            await rwi.events.wait("call.hangup", call_id="leg_a")
            got = seen(rwi.events.received, "leg_a")
        finally:
            await rwi.close()
        assert await phone.finish() == 0
        assert rwi.reconnects == 4
        resumes = await commands(db_url, "session.resume")
        assert len(resumes) == 4 and all(r["params"]["since_seq"] > 0 for r in resumes)
        assert got == await logged(db_url, "leg_a")
        names = [name for _, name in got]
        assert names.count("media.hold.started") == 3 and names.count("call.hangup") == 1


class LosesFirstOriginateReply(Client):
    """The connection drops just as the reply to the first originate arrives."""

    lost = False

    def _reply(self, link: _Link, frame: dict[str, Any]) -> None:
        pending = self._pending.get(str(frame.get("action_id")))
        if pending is not None and pending.action == "call.originate" and not self.lost:
            self.lost = True
            self.drop_connection()
            return
        super()._reply(link, frame)


async def test_a_retried_originate_places_one_call(db_url: str, tmp_path: Path) -> None:
    phone = uas(tmp_path)
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, trunk=phone)) as rig:
        rig.sipps.append(phone)
        await phone.start()
        rwi = LosesFirstOriginateReply(rig.svc.url, "app-token", retry_delay=0.05)
        await rwi.start()
        try:
            data = await rwi.call.originate(call_id="leg_a", destination="sip:100@trunk")
            assert data == {"call_id": "leg_a"} and rwi.lost
            await rwi.events.wait("call.answered", call_id="leg_a", within=15)
            assert "leg_a" in rwi.calls
            await rwi.call.hangup(call_id="leg_a")
            await rwi.events.wait("call.hangup", call_id="leg_a")
        finally:
            await rwi.close()
        assert await phone.finish() == 0  # SIPp -m 1: one INVITE, one call
        sent = await commands(db_url, "call.originate")
        assert len(sent) == 2
        assert sent[0]["idempotency_key"] == sent[1]["idempotency_key"]
        assert sent[1]["replayed"] is True and sent[1]["outcome"] == sent[0]["outcome"]
        assert [n for _, n in await logged(db_url, "leg_a")].count("call.hangup") == 1


async def test_a_call_ending_while_the_client_is_away_gets_its_hangup_on_resume(
    db_url: str, tmp_path: Path
) -> None:
    routes = [{"name": "support-line", "match_user": "^2000$", "context": "support"}]
    tables = sip_tables(tmp_path, routes=routes)
    async with pbx(db_url, tmp_path, tables, orphan_hold_secs=30) as rig:
        state = rig.svc.service.state
        rwi = HeldBack(rig.svc.url, "app-token", retry_delay=0.05, subscribe=["support"])
        await rwi.start()
        caller = call_sipp(tmp_path, "uac_call", middle="", pause_ms=1500)
        rig.sipps.append(caller)
        try:
            await caller.start("-s", "2000", remote=f"127.0.0.1:{rig.sip_port}")
            incoming = await rwi.events.wait("call.incoming", within=15)
            call_id = str(incoming.call_id)
            await rwi.call.answer(call_id=call_id)
            await rwi.events.wait("call.answered", call_id=call_id, within=15)
            # away while the caller hangs up: the call ends orphaned, there is nothing
            # to re-attach, and its end must still reach the client from the log
            rwi.gate.clear()
            rwi.drop_connection()
            await until(lambda: call_id not in state.calls)
            assert not any(e.name == "call.hangup" for e in rwi.events.received)
            rwi.gate.set()
            hangup = await rwi.events.wait("call.hangup", call_id=call_id, within=15)
            assert hangup.data["reason"] == "caller"
            got = seen(rwi.events.received, call_id)
        finally:
            await rwi.close()
        assert await caller.finish() == 0
        assert rwi.reconnects == 1 and call_id not in rwi.calls
        assert got == await logged(db_url, call_id)
        assert [name for _, name in got] == ["call.incoming", "call.answered", "call.hangup"]
