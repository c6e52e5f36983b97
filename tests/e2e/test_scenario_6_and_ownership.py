"""Seed scenario 6 (prompt interrupted by DTMF), owner disconnect with re-attach or
timeout, and the contract's call-level errors, end to end."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rwi.client import ERRORS, Client, CommandError, InvalidState
from tests.e2e.pbx import answered, echo_agent, events_of, pbx, sip_tables, start
from tests.support.rtp import RtpPeer
from tests.support.sipp_templates import RING_180, call_sipp
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e


async def test_scenario_6_prompt_interrupted_by_a_digit(db_url: str, tmp_path: Path) -> None:
    far = RtpPeer(None)  # the customer's phone: silence, then an RFC 4733 digit
    phone = call_sipp(tmp_path, "uas_call", ring=RING_180, sdp_port=far.port, pt=0, codec="PCMU")
    sales = echo_agent(tmp_path)
    tables = sip_tables(tmp_path, users={"customer": phone, "sales": sales})
    write_tone_wav(tmp_path / "sounds" / "welcome.wav", 600.0, seconds=10)
    try:
        async with pbx(db_url, tmp_path, tables) as rig:
            await start(rig, (phone, ()), (sales, ("-rtp_echo",)))
            client = await rig.client()
            await answered(client, "leg_a", "sip:customer@local")
            local = rig.svc.runtime.legs.info("leg_a").local_rtp
            far.start(local)
            reply = await client.media.play(
                call_id="leg_a", source={"type": "file", "uri": "welcome.wav"},
                interrupt_on_dtmf=True,
            )  # fmt: skip
            playback = reply["playback_id"]
            await client.events.wait("media.play.started", call_id="leg_a")
            far.send_digit("5", 120)
            finished = await client.events.wait("media.play.finished", call_id="leg_a", within=5)
            dtmf = await client.events.wait("call.dtmf", call_id="leg_a", within=5)
            assert finished.data == {"playback_id": playback, "interrupted": True, "digit": "5"}
            assert dtmf.data["digit"] == "5"
            assert 100 <= dtmf.data["duration_ms"] <= 140
            # 3. on to sales by attended transfer: the customer holds while sales answers
            transfer = await client.call.transfer_attended(
                call_id="leg_a", target="sip:sales@local"
            )
            consult = transfer["consultation_call_id"]
            await client.events.wait("media.hold.started", call_id="leg_a")
            await client.events.wait("call.answered", call_id=consult, within=15)
            await client.call.transfer_complete(call_id="leg_a", consultation_call_id=consult)
            bridged = await client.events.wait("call.bridged", call_id="leg_a")
            assert bridged.data == {"leg_a": "leg_a", "leg_b": consult}
            assert events_of(client, "leg_a") == [
                "call.ringing", "call.answered", "media.play.started", "media.play.finished",
                "call.dtmf", "media.hold.started", "media.hold.stopped", "call.bridged",
            ]  # fmt: skip
            for leg in ("leg_a", consult):
                await client.call.hangup(call_id=leg)
                await client.events.wait("call.hangup", call_id=leg)
            assert await phone.finish() == 0
            assert await sales.finish() == 0
            await rig.replay_matches()
    finally:
        far.close()


async def test_owner_disconnect_then_reattach_keeps_the_call(db_url: str, tmp_path: Path) -> None:
    agent = echo_agent(tmp_path)
    tables = sip_tables(tmp_path, users={"agent": agent})
    async with pbx(db_url, tmp_path, tables, orphan_hold_secs=30) as rig:
        await start(rig, (agent, ("-rtp_echo",)))
        first = await rig.client()
        await answered(first, "leg_a", "sip:agent@local")
        await first.close()
        rig.clients.remove(first)
        second = await rig.client()
        # not yet: it must take the call first
        with pytest.raises(InvalidState):
            await second.call.hangup(call_id="leg_a")
        # a connection of another token without the right may not force it either
        attached = await second.session.attach_call(call_id="leg_a", mode="control")
        assert attached == {"call_id": "leg_a", "mode": "control"}
        listed = await second.session.list_calls()
        assert [c["call_id"] for c in listed["calls"]] == ["leg_a"]
        await second.call.hangup(call_id="leg_a")
        hangup = await second.events.wait("call.hangup", call_id="leg_a")
        assert hangup.data["reason"] == "rwi"
        assert await agent.finish() == 0
        await rig.replay_matches()


async def test_owner_disconnect_and_no_reattach_hangs_up(db_url: str, tmp_path: Path) -> None:
    agent = echo_agent(tmp_path)
    tables = sip_tables(tmp_path, users={"agent": agent})
    async with pbx(db_url, tmp_path, tables, orphan_hold_secs=1) as rig:
        await start(rig, (agent, ("-rtp_echo",)))
        first = await rig.client()
        await answered(first, "leg_a", "sip:agent@local")
        await first.close()
        rig.clients.remove(first)
        assert await agent.finish(limit=10) == 0  # our BYE came after the orphan window

        async def hangup_in_log() -> dict[str, object]:
            async for page in rig.svc.service.reader.follow(0, poll_interval=0.2):
                for event in page:
                    if event.type == "call.hangup" and event.stream_id == "call:leg_a":
                        return event.data
            raise AssertionError("log ended")

        hangup = await asyncio.wait_for(hangup_in_log(), 10)
        assert hangup["reason"] == "timeout" and hangup["hangup_by"] == "system"
        assert "leg_a" not in rig.svc.service.state.calls
        await rig.replay_matches()


async def test_call_level_errors_on_a_live_service(db_url: str, tmp_path: Path) -> None:
    agent = echo_agent(tmp_path)
    ringing = call_sipp(tmp_path, "uas_noanswer")
    tables = sip_tables(tmp_path, users={"agent": agent, "slow": ringing})
    async with pbx(db_url, tmp_path, tables, max_calls_per_connection=2) as rig:
        await start(rig, (agent, ("-rtp_echo",)), (ringing, ()))
        owner = await rig.client()
        other = await rig.client("app2-token")
        await answered(owner, "leg_a", "sip:agent@local")
        await owner.call.originate(call_id="leg_r", destination="sip:slow@local")
        await owner.events.wait("call.ringing", call_id="leg_r", within=10)

        async def error(client: Client, action: str, params: dict[str, Any]) -> dict[str, str]:
            with pytest.raises(CommandError) as raised:
                await client.request(action, params)
            assert isinstance(raised.value, ERRORS[raised.value.code])  # its own class
            return {"code": raised.value.code, "message": raised.value.message}

        e = await error(owner, "call.hangup", {"call_id": "nonexistent"})
        assert e == {
            "code": "call_not_found",
            "message": "call 'nonexistent' is not an active call",
        }
        e = await error(owner, "call.originate", {"call_id": "leg_a", "destination": "sip:x@local"})
        assert e["code"] == "call_exists" and "leg_a" in e["message"]
        e = await error(owner, "call.originate", {"call_id": "leg_z", "destination": "sip:x@local"})
        assert e == {"code": "rate_limited", "message": "max_calls_per_connection (2) reached"}
        e = await error(owner, "call.bridge", {"leg_a": "leg_a", "leg_b": "leg_r"})
        assert e["code"] == "invalid_state" and "leg_r" in e["message"]
        e = await error(owner, "call.answer", {"call_id": "leg_a"})
        assert e["code"] == "invalid_state" and "call.answer" in e["message"]
        e = await error(other, "call.hangup", {"call_id": "leg_a"})
        assert e["code"] == "already_owned" and "leg_a" in e["message"]
        e = await error(
            other, "supervisor.listen", {"supervisor_call_id": "s", "target_call_id": "leg_a"}
        )
        assert e == {"code": "forbidden", "message": "scope required: supervisor.control"}
        e = await error(
            owner, "media.play", {"call_id": "leg_a", "source": {"type": "file", "uri": "../x.wav"}}
        )
        assert e["code"] == "invalid_params" and "params.source.uri" in e["message"]
        e = await error(owner, "call.originate", {"call_id": "leg_y", "destination": "mailto:x"})
        assert e["code"] == "invalid_params" and "params.destination" in e["message"]
        await owner.call.hangup(call_id="leg_r")
        await owner.call.hangup(call_id="leg_a")
        await owner.events.wait("call.hangup", call_id="leg_a")
        assert await agent.finish() == 0
        await rig.replay_matches()
