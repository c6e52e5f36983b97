"""Seed scenario 12 (inbound answer / reject) end to end: a SIPp caller routed by the
dialplan to an RWI context, two subscribed clients racing to claim it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from rwi.client import AlreadyOwned, Event
from tests.e2e.pbx import TONES, events_of, pbx, sip_tables
from tests.support.audio import g711_file, heard
from tests.support.sipp_templates import RING_180, call_sipp

PCMU_OFFER = "m=audio [media_port] RTP/AVP 0\na=rtpmap:0 PCMU/8000"

pytestmark = pytest.mark.e2e

ROUTES = [{"name": "sales-line", "match_user": r"^2\d{3}$", "context": "sales"}]


def tables(tmp: Path, **sip: object) -> dict[str, object]:
    t = sip_tables(tmp, routes=ROUTES)
    t["sip"].update({"header_whitelist": ["X-Customer-Id"], **sip})  # type: ignore[attr-defined]
    return t


async def test_scenario_12_inbound_claim_race_answer_and_caller_hangup(
    db_url: str, tmp_path: Path
) -> None:
    async with pbx(db_url, tmp_path, tables(tmp_path)) as rig:
        a = await rig.client("app-token")
        b = await rig.client("app2-token")
        for client in (a, b):
            reply = await client.session.subscribe(contexts=["sales", "support"])
            assert reply == {"contexts": ["sales", "support"]}
        caller = call_sipp(tmp_path, "uac_call", middle="", pause_ms=2500)
        rig.sipps.append(caller)
        await caller.start("-s", "2000", "-rtp_echo", remote=f"127.0.0.1:{rig.sip_port}")

        incoming_a = await a.events.wait("call.incoming", within=10)
        incoming_b = await b.events.wait("call.incoming", within=10)
        call_id = str(incoming_a.call_id)
        assert incoming_b.call_id == call_id
        assert incoming_a.context == "sales"
        assert incoming_a.data["caller"] == "alice"
        assert incoming_a.data["callee"] == "2000"
        assert incoming_a.data["direction"] == "inbound"
        assert incoming_a.data["headers"] == {"x-customer-id": "4711"}

        answered = await a.call.answer(call_id=call_id)
        assert answered == {"call_id": call_id}
        with pytest.raises(AlreadyOwned):
            await b.call.answer(call_id=call_id)
        await a.events.wait("call.answered", call_id=call_id)
        await b.events.wait("call.answered", call_id=call_id)  # the loser still learns it
        await rig.sip_answered(call_id)

        # audio: a tone played into the call comes back from the caller's echo
        play = await a.media.play(
            call_id=call_id, source={"type": "tone", "frequency": 1500, "duration_ms": 3000}
        )
        assert play["playback_id"].startswith("pb-")
        await a.events.wait("media.play.started", call_id=call_id)
        said, heard_by_caller = await rig.tap(call_id, 1.0)
        assert heard(heard_by_caller, TONES) == {1500.0}
        assert heard(said, TONES) == {1500.0}

        hangup_a = await a.events.wait("call.hangup", call_id=call_id, within=10)
        hangup_b = await b.events.wait("call.hangup", call_id=call_id, within=10)
        assert hangup_a.data["reason"] == "caller"
        assert hangup_a.data["hangup_by"] == "remote"
        assert hangup_a.data["duration_secs"] > 0
        assert hangup_b.seq == hangup_a.seq
        assert await caller.finish() == 0
        # the caller hung up before the 3 s tone ran out: the playback ends first
        assert events_of(a, call_id) == [
            "call.incoming", "call.answered", "media.play.started", "media.play.finished",
            "call.hangup",
        ]  # fmt: skip
        assert events_of(b, call_id) == ["call.incoming", "call.answered", "call.hangup"]
        await rig.replay_matches()


REJECTS: tuple[tuple[Literal["busy", "forbidden", "not_found", "decline"], int], ...] = (
    ("busy", 486), ("forbidden", 403), ("not_found", 404), ("decline", 603),
)  # fmt: skip


async def test_reject_reasons_reach_the_caller_as_their_sip_codes(
    db_url: str, tmp_path: Path
) -> None:
    async with pbx(db_url, tmp_path, tables(tmp_path)) as rig:
        a = await rig.client()
        await a.session.subscribe(contexts=["sales"])
        for reason, code in REJECTS:
            caller = call_sipp(tmp_path, "uac_reject", code=code, sdp_media=PCMU_OFFER)
            rig.sipps.append(caller)
            await caller.start("-s", "2001", remote=f"127.0.0.1:{rig.sip_port}")
            ended = {e.call_id for e in a.events.received if e.name == "call.hangup"}

            def new_call(e: Event, ended: set[str | None] = ended) -> bool:
                return e.name == "call.incoming" and e.call_id not in ended

            incoming = await a.events.wait_for(new_call, within=10)
            call_id = str(incoming.call_id)
            reply = await a.call.reject(call_id=call_id, reason=reason)
            assert reply == {"call_id": call_id, "sip_status": code}
            hangup = await a.events.wait("call.hangup", call_id=call_id)
            assert hangup.data["reason"] == "rejected" and hangup.data["sip_status"] == code
            assert await caller.finish() == 0, reason  # SIPp saw exactly that code
        await rig.replay_matches()


async def test_unclaimed_call_gets_480_after_the_context_timeout(
    db_url: str, tmp_path: Path
) -> None:
    async with pbx(
        db_url, tmp_path, tables(tmp_path),
        contexts=[{"name": "sales", "no_answer_timeout_secs": 1, "no_answer_action": "hangup"}],
    ) as rig:  # fmt: skip
        a = await rig.client()
        await a.session.subscribe(contexts=["sales"])
        caller = call_sipp(tmp_path, "uac_reject", code=480, sdp_media=PCMU_OFFER)
        rig.sipps.append(caller)
        await caller.start("-s", "2002", remote=f"127.0.0.1:{rig.sip_port}")
        incoming = await a.events.wait("call.incoming", within=10)
        hangup = await a.events.wait("call.hangup", call_id=incoming.call_id, within=10)
        assert hangup.data["reason"] == "no_answer"
        assert hangup.data["hangup_by"] == "system"
        assert await caller.finish() == 0
        await rig.replay_matches()


async def test_an_unrouted_call_is_refused_404_and_logged(db_url: str, tmp_path: Path) -> None:
    async with pbx(db_url, tmp_path, tables(tmp_path)) as rig:
        caller = call_sipp(tmp_path, "uac_reject", code=404, sdp_media=PCMU_OFFER)
        rig.sipps.append(caller)
        await caller.start("-s", "9999", remote=f"127.0.0.1:{rig.sip_port}")
        assert await caller.finish() == 0
        import asyncpg

        from rwi.store.database import asyncpg_dsn

        conn = await asyncpg.connect(asyncpg_dsn(db_url))
        row = await conn.fetchrow(
            "SELECT data FROM events WHERE type = 'observation' AND data->>'type' = "
            "'sip.call.refused'"
        )
        await conn.close()
        assert row is not None


async def test_a_route_to_a_local_user_bridges_caller_and_phone(
    db_url: str, tmp_path: Path
) -> None:

    tone = g711_file(tmp_path / "tone1k.ul", 0, 1000.0)
    phone = call_sipp(
        tmp_path, "uas_call", ring=RING_180, sdp_port="[rtpstream_audio_port]", pt=0,
        codec="PCMU", ack_action=f'<action><exec rtp_stream="{tone},-1,0"/></action>',
    )  # fmt: skip
    routes = [{"name": "direct", "match_user": "^1001$", "user": "1001"}]
    t = sip_tables(tmp_path, users={"1001": phone}, routes=routes)
    async with pbx(db_url, tmp_path, t) as rig:
        rig.sipps.append(phone)
        await phone.start()
        caller = call_sipp(tmp_path, "uac_call", middle="", pause_ms=3000)
        rig.sipps.append(caller)
        await caller.start("-s", "1001", "-rtp_echo", remote=f"127.0.0.1:{rig.sip_port}")

        async def answered_caller() -> str:
            """The caller's leg once SIP reports it answered (its ACK): by then the
            executor has answered it and bridged it, in that order."""
            a_leg = None
            async for page in rig.svc.service.reader.follow(0, poll_interval=0.2):
                for event in page:
                    if event.type == "call.bridged":
                        a_leg = str(event.data["leg_a"])
                    if (
                        a_leg is not None
                        and event.type == "observation"
                        and event.data["type"] == "sip.call.answered"
                        and event.data["call_id"] == a_leg
                    ):
                        return a_leg
            raise AssertionError("log ended")

        import asyncio

        a_leg = await asyncio.wait_for(answered_caller(), 10)
        _, caller_hears = await rig.tap(a_leg, 1.0)
        assert heard(caller_hears, TONES) == {1000.0}  # the phone's tone reaches the caller
        assert await caller.finish() == 0  # the caller hangs up ...
        assert await phone.finish() == 0  # ... and the phone gets its BYE
        await rig.replay_matches()
