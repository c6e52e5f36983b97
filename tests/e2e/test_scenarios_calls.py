"""Seed scenarios 3 (method A), 5 and 11 end to end, and outbound calls that fail:
busy, no answer, a destination that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwi.client import InvalidParams
from tests.e2e.pbx import TONES, answered, echo_agent, events_of, pbx, sip_tables, start, tone_phone
from tests.support.audio import g711_file, heard
from tests.support.sipp_templates import call_sipp
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e


async def test_scenario_11_hold_and_unhold(db_url: str, tmp_path: Path) -> None:
    tone = g711_file(tmp_path / "tone1k.ul", 0, 1000.0)
    cust, agent = tone_phone(tmp_path, tone), echo_agent(tmp_path)
    tables = sip_tables(tmp_path, trunk=cust, users={"1001": agent})
    write_tone_wav(tmp_path / "sounds" / "hold.wav", 440.0)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent, ("-rtp_echo",)))
        client = await rig.client()
        await answered(client, "leg_a", "sip:5550100@trunk")
        await answered(client, "leg_b", "sip:1001@local")
        await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
        await client.events.wait("call.bridged", call_id="leg_a")

        assert await client.call.hold(call_id="leg_a", music="hold.wav") == {"call_id": "leg_a"}
        started = await client.events.wait("media.hold.started", call_id="leg_a")
        assert started.data == {"music": "hold.wav"}
        _, customer_hears = await rig.tap("leg_a", 1.0)
        _, agent_hears = await rig.tap("leg_b", 1.0)
        assert heard(customer_hears, TONES) == {440.0}  # the hold music
        assert heard(agent_hears, TONES) == set()  # silence, not the customer

        await client.call.unhold(call_id="leg_a")
        await client.events.wait("media.hold.stopped", call_id="leg_a")
        _, agent_hears = await rig.tap("leg_b", 1.0)
        assert heard(agent_hears, TONES) == {1000.0}  # the bridge is back
        listed = await client.session.list_calls()
        assert {c["call_id"]: c["state"] for c in listed["calls"]} == {
            "leg_a": "bridged", "leg_b": "bridged"}  # fmt: skip

        with pytest.raises(InvalidParams):
            await client.call.hold(call_id="leg_a", music="../../etc/passwd")
        with pytest.raises(InvalidParams) as missing:
            await client.call.hold(call_id="leg_a", music="nope.wav")
        assert "no sound file 'nope.wav'" in missing.value.message
        await client.call.hangup(call_id="leg_a")
        await client.call.hangup(call_id="leg_b")
        await client.events.wait("call.hangup", call_id="leg_b")
        await rig.replay_matches()


async def test_scenario_5_hold_music_and_parallel_agents(db_url: str, tmp_path: Path) -> None:
    tone = g711_file(tmp_path / "tone1k.ul", 0, 1000.0)
    cust = tone_phone(tmp_path, tone)
    agent1 = call_sipp(tmp_path, "uas_noanswer")
    agent2 = echo_agent(tmp_path)
    tables = sip_tables(tmp_path, users={"customer": cust, "agent1": agent1, "agent2": agent2})
    write_tone_wav(tmp_path / "sounds" / "hold.wav", 440.0)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent1, ()), (agent2, ("-rtp_echo",)))
        client = await rig.client()
        await answered(client, "leg_a", "sip:customer@local")
        reply = await client.media.play(
            call_id="leg_a", source={"type": "file", "uri": "hold.wav"}, loop=True
        )
        playback = reply["playback_id"]
        await client.events.wait("media.play.started", call_id="leg_a")
        _, customer_hears = await rig.tap("leg_a", 0.8)
        assert heard(customer_hears, TONES) == {440.0}

        await client.call.originate(call_id="leg_b", destination="sip:agent1@local")
        await client.call.originate(call_id="leg_c", destination="sip:agent2@local")
        await client.events.wait("call.ringing", call_id="leg_b", within=10)
        await client.events.wait("call.answered", call_id="leg_c", within=15)
        await client.call.hangup(call_id="leg_b")  # cancel agent1
        hangup_b = await client.events.wait("call.hangup", call_id="leg_b")
        assert hangup_b.data["sip_status"] == 487
        stopped = await client.media.stop(call_id="leg_a")
        assert stopped == {"playback_id": playback}
        finished = await client.events.wait("media.play.finished", call_id="leg_a")
        assert finished.data["interrupted"] is True
        await client.call.bridge(leg_a="leg_a", leg_b="leg_c")
        await client.events.wait("call.bridged", call_id="leg_a")
        _, agent_hears = await rig.tap("leg_c", 1.0)
        assert heard(agent_hears, TONES) == {1000.0}
        assert await agent1.finish() == 0  # it saw our CANCEL
        assert events_of(client, "leg_b") == ["call.ringing", "call.hangup"]
        await client.call.hangup(call_id="leg_a")
        await client.call.hangup(call_id="leg_c")
        await client.events.wait("call.hangup", call_id="leg_c")
        await rig.replay_matches()


async def test_scenario_3a_swap_agent_by_hangup_and_new_bridge(db_url: str, tmp_path: Path) -> None:
    tone = g711_file(tmp_path / "tone1k.ul", 0, 1000.0)
    cust, agent1, agent2 = tone_phone(tmp_path, tone), echo_agent(tmp_path), echo_agent(tmp_path)
    tables = sip_tables(tmp_path, trunk=cust, users={"agent1": agent1, "agent2": agent2})
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent1, ("-rtp_echo",)), (agent2, ("-rtp_echo",)))
        client = await rig.client()
        await answered(client, "leg_a", "sip:5550100@trunk")
        await answered(client, "leg_b", "sip:agent1@local")
        await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
        await client.events.wait("call.bridged", call_id="leg_a")

        await client.call.hangup(call_id="leg_b")
        unbridged = await client.events.wait("call.unbridged", call_id="leg_a")
        assert unbridged.data == {"leg_a": "leg_b", "leg_b": "leg_a", "reason": "hangup"}
        await client.events.wait("call.hangup", call_id="leg_b")
        await answered(client, "leg_c", "sip:agent2@local", context="default")
        await client.call.bridge(leg_a="leg_a", leg_b="leg_c")
        _, new_agent_hears = await rig.tap("leg_c", 1.0)
        assert heard(new_agent_hears, TONES) == {1000.0}
        assert await agent1.finish() == 0
        await client.call.hangup(call_id="leg_a")
        await client.call.hangup(call_id="leg_c")
        await client.events.wait("call.hangup", call_id="leg_c")
        await rig.replay_matches()


async def test_outbound_busy_no_answer_and_nonexistent(db_url: str, tmp_path: Path) -> None:
    busy = call_sipp(tmp_path, "uas_busy")
    silent = call_sipp(tmp_path, "uas_noanswer")
    tables = sip_tables(tmp_path, users={"busy": busy, "silent": silent})
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (busy, ()), (silent, ()))
        client = await rig.client()
        await client.call.originate(call_id="b", destination="sip:busy@local")
        busy_event = await client.events.wait("call.busy", call_id="b", within=10)
        assert busy_event.data["sip_status"] == 486
        hangup = await client.events.wait("call.hangup", call_id="b")
        assert (hangup.data["reason"], hangup.data["sip_status"]) == ("busy", 486)

        await client.call.originate(call_id="n", destination="sip:silent@local", timeout_secs=1)
        await client.events.wait("call.no_answer", call_id="n", within=10)
        hangup = await client.events.wait("call.hangup", call_id="n")
        assert hangup.data["reason"] == "no_answer"
        assert await silent.finish() == 0  # it got our CANCEL

        await client.call.originate(call_id="x", destination="sip:nobody@local")
        hangup = await client.events.wait("call.hangup", call_id="x", within=10)
        assert hangup.data["reason"] == "failed"
        assert await busy.finish() == 0
        await rig.replay_matches()
