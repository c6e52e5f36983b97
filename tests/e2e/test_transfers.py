"""Transfers end to end: seed scenario 3 method B (agent swap by attended transfer),
scenario 2 (attended transfer: a busy consultation and a cancelled one restore the
call), and blind transfers (REFER of a bridged leg, PBX re-route of an unbridged one),
with SIPp phones, audio checked by spectrum, and the log replayed to the live state."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwi.client import Client, NotFound
from tests.e2e.pbx import (
    TONES,
    Pbx,
    answered,
    echo_agent,
    events_of,
    pbx,
    sip_tables,
    start,
    tone_phone,
)
from tests.support.audio import g711_file, heard
from tests.support.sipp import Sipp
from tests.support.sipp_templates import RING_180, UAS_BYE, call_sipp
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e


async def bridged_customer_and_agent(rig: Pbx, client: Client) -> None:
    await answered(client, "leg_a", "sip:5550100@trunk")
    await answered(client, "leg_b", "sip:agent1@local")
    await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
    await client.events.wait("call.bridged", call_id="leg_a")


async def test_scenario_3_method_b_agent_swap_by_attended_transfer(
    db_url: str, tmp_path: Path
) -> None:
    cust = tone_phone(tmp_path, g711_file(tmp_path / "c1k.ul", 0, 1000.0))
    agent1 = echo_agent(tmp_path)
    agent2 = tone_phone(tmp_path, g711_file(tmp_path / "a1500.ul", 0, 1500.0))
    tables = sip_tables(tmp_path, trunk=cust, users={"agent1": agent1, "agent2": agent2})
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", 440.0, seconds=5)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent1, ("-rtp_echo",)), (agent2, ()))
        client = await rig.client()
        await bridged_customer_and_agent(rig, client)

        # 1. attended transfer to agent2: the customer holds, agent1 consults agent2
        reply = await client.call.transfer_attended(call_id="leg_a", target="sip:agent2@local")
        consult = reply["consultation_call_id"]
        assert consult.startswith("consult-leg_a-")
        await client.events.wait("call.answered", call_id=consult, within=15)
        await client.events.wait("call.bridged", call_id="leg_b")
        await rig.sip_answered(consult)
        _, customer_hears = await rig.tap("leg_a", 1.0)
        _, agent1_hears = await rig.tap("leg_b", 1.0)
        assert heard(customer_hears, TONES) == {440.0}  # hold music, not the agents
        assert heard(agent1_hears, TONES) == {1500.0}  # agent2

        # 2. complete: agent1 is hung up, the customer talks to agent2
        reply = await client.call.transfer_complete(call_id="leg_a", consultation_call_id=consult)
        assert reply == {"call_id": "leg_a", "leg_a": "leg_a", "leg_b": consult}
        replied_at = client.last_reply_seq
        bridged = await client.events.wait("call.bridged", leg_a="leg_a", leg_b=consult)
        assert bridged.data == {"leg_a": "leg_a", "leg_b": consult}
        assert replied_at < bridged.seq  # the reply came before the event it caused
        hangup = await client.events.wait("call.hangup", call_id="leg_b")
        assert (hangup.data["reason"], hangup.data["hangup_by"]) == ("transfer", "rwi")
        assert await agent1.finish() == 0  # agent1's phone got our BYE
        _, customer_hears = await rig.tap("leg_a", 1.0)
        _, agent2_hears = await rig.tap(consult, 1.0)
        assert heard(customer_hears, TONES) == {1500.0}
        assert heard(agent2_hears, TONES) == {1000.0}

        assert events_of(client, "leg_a") == [
            "call.ringing", "call.answered", "call.bridged", "call.unbridged",
            "media.hold.started", "media.hold.stopped", "call.bridged",
        ]  # fmt: skip
        assert events_of(client, "leg_b") == [
            "call.ringing", "call.answered", "media.play.started", "media.play.finished",
            "call.bridged", "call.hangup",
        ]  # fmt: skip
        listed = await client.session.list_calls()
        assert {c["call_id"]: (c["state"], c["bridged_with"]) for c in listed["calls"]} == {
            "leg_a": ("bridged", consult), consult: ("bridged", "leg_a")}  # fmt: skip

        for leg in ("leg_a", consult):
            await client.call.hangup(call_id=leg)
            await client.events.wait("call.hangup", call_id=leg)
        assert await cust.finish() == 0
        assert await agent2.finish() == 0
        await rig.replay_matches()


async def test_scenario_2_failed_and_cancelled_consultations_restore_the_call(
    db_url: str, tmp_path: Path
) -> None:
    cust = tone_phone(tmp_path, g711_file(tmp_path / "c1k.ul", 0, 1000.0))
    agent1 = echo_agent(tmp_path)
    busy = call_sipp(tmp_path, "uas_busy")
    agent2 = tone_phone(tmp_path, g711_file(tmp_path / "a1500.ul", 0, 1500.0))
    users = {"agent1": agent1, "busy": busy, "agent2": agent2}
    tables = sip_tables(tmp_path, trunk=cust, users=users)
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", 440.0, seconds=5)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent1, ("-rtp_echo",)), (busy, ()), (agent2, ()))
        client = await rig.client()
        await bridged_customer_and_agent(rig, client)

        # a busy consultation: the transfer fails, customer and agent1 talk again
        reply = await client.call.transfer_attended(call_id="leg_a", target="sip:busy@local")
        busy_leg = reply["consultation_call_id"]
        failed = await client.events.wait("call.transfer.failed", call_id="leg_a", within=10)
        assert failed.data == {
            "consultation_call_id": busy_leg, "sip_status": 486, "reason": "busy"}  # fmt: skip
        await client.events.wait("media.hold.stopped", call_id="leg_a")
        assert await busy.finish() == 0
        _, agent1_hears = await rig.tap("leg_b", 1.0)
        assert heard(agent1_hears, TONES) == {1000.0}

        # a consultation that is cancelled after agent2 answered
        reply = await client.call.transfer_attended(call_id="leg_a", target="sip:agent2@local")
        consult = reply["consultation_call_id"]
        await client.events.wait("call.answered", call_id=consult, within=15)
        await client.events.wait("call.bridged", call_id="leg_b")
        with pytest.raises(NotFound) as unknown:
            await client.call.transfer_complete(call_id="leg_a", consultation_call_id="consult-x")
        assert "consult-x" in unknown.value.message
        reply = await client.call.transfer_cancel(consultation_call_id=consult)
        assert reply == {"call_id": "leg_a", "consultation_call_id": consult}
        gone = await client.events.wait("call.hangup", call_id=consult)
        assert gone.data["reason"] == "canceled"
        assert await agent2.finish() == 0
        rebridged = await client.events.wait(
            "call.bridged", leg_a="leg_a", leg_b="leg_b", after_seq=gone.seq
        )
        assert rebridged.data == {"leg_a": "leg_a", "leg_b": "leg_b"}
        assert rebridged.call_id == "leg_a"
        _, agent1_hears = await rig.tap("leg_b", 1.0)
        _, customer_hears = await rig.tap("leg_a", 1.0)
        assert heard(agent1_hears, TONES) == {1000.0}
        assert heard(customer_hears, TONES) == {1000.0}  # agent1's echo
        assert [e for e in events_of(client, "leg_a") if e.startswith("call.transfer")] == [
            "call.transfer.failed"
        ]
        for leg in ("leg_a", "leg_b"):
            await client.call.hangup(call_id=leg)
        await client.events.wait("call.hangup", call_id="leg_b")
        await rig.replay_matches()


def transferee(tmp: Path, freq_file: Path, refer_to: str) -> Sipp:
    """The customer's phone: accepts our REFER, reports success, leaves the call."""
    return call_sipp(
        tmp, "uas_transferee", ring=RING_180, sdp_port="[rtpstream_audio_port]", pt=0,
        codec="PCMU", ack_action=f'<action><exec rtp_stream="{freq_file},-1,0"/></action>',
        refer_to=refer_to, frag="SIP/2.0 200 OK", ending=UAS_BYE,
    )  # fmt: skip


async def test_blind_transfers_by_refer_and_by_reroute(db_url: str, tmp_path: Path) -> None:
    tone = g711_file(tmp_path / "c1k.ul", 0, 1000.0)
    cust = transferee(tmp_path, tone, r"sip:agent2@127\.0\.0\.1:[0-9]+")
    agent1 = tone_phone(tmp_path, g711_file(tmp_path / "a1500.ul", 0, 1500.0))
    agent2 = echo_agent(tmp_path)
    tables = sip_tables(tmp_path, trunk=cust, users={"agent1": agent1, "agent2": agent2})
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent1, ()), (agent2, ("-rtp_echo",)))
        client = await rig.client()
        await bridged_customer_and_agent(rig, client)

        # a bridged leg: its far end is REFERred to the target (through this PBX)
        reply = await client.call.transfer(call_id="leg_a", target="sip:agent2@local")
        assert reply == {"call_id": "leg_a", "method": "refer"}
        transferred = await client.events.wait("call.transferred", call_id="leg_a")
        assert transferred.data == {"target": "sip:agent2@local", "method": "refer"}
        accepted = await client.events.wait("call.transfer.accepted", call_id="leg_a", within=10)
        assert accepted.data == {"sip_status": 200}
        hangup = await client.events.wait("call.hangup", call_id="leg_a", within=10)
        assert (hangup.data["reason"], hangup.data["hangup_by"]) == ("transfer", "remote")
        unbridged = await client.events.wait("call.unbridged", call_id="leg_b")
        assert unbridged.data["reason"] == "hangup"
        assert await cust.finish() == 0  # it saw the right Refer-To and left by BYE

        # an unbridged leg: the PBX dials the target itself and bridges on answer
        reply = await client.call.transfer(call_id="leg_b", target="sip:agent2@local")
        new_leg = reply["transfer_call_id"]
        assert reply == {
            "call_id": "leg_b",
            "method": "bridge",
            "transfer_call_id": new_leg,
        }
        accepted = await client.events.wait("call.transfer.accepted", call_id="leg_b", within=15)
        assert accepted.data == {"transfer_call_id": new_leg, "sip_status": 200}
        bridged = await client.events.wait("call.bridged", call_id="leg_b", within=5)
        assert bridged.data == {"leg_a": "leg_b", "leg_b": new_leg}
        await rig.sip_answered(new_leg)
        _, agent1_hears = await rig.tap("leg_b", 1.0)
        assert heard(agent1_hears, TONES) == {1500.0}  # agent2 echoes agent1's tone
        assert [e for e in events_of(client, "leg_b") if e.startswith("call.transfer")] == [
            "call.transferred", "call.transfer.accepted"]  # fmt: skip

        for leg in ("leg_b", new_leg):
            await client.call.hangup(call_id=leg)
            await client.events.wait("call.hangup", call_id=leg)
        assert await agent1.finish() == 0
        assert await agent2.finish() == 0
        await rig.replay_matches()
