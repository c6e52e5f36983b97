"""Seed scenario 1 (outbound + bridge) end to end: RWI client, real service, SIPp phones,
audio through the anchored media, and the log replaying to the live state."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.pbx import TONES, events_of, pbx, sip_tables
from tests.support.audio import g711_file, heard
from tests.support.sipp_templates import RING_180, call_sipp

pytestmark = pytest.mark.e2e


async def test_scenario_1_originate_two_legs_and_bridge(db_url: str, tmp_path: Path) -> None:
    tone = g711_file(tmp_path / "tone1k.ul", 0, 1000.0)
    customer = call_sipp(
        tmp_path, "uas_call", ring=RING_180, sdp_port="[rtpstream_audio_port]", pt=0,
        codec="PCMU", ack_action=f'<action><exec rtp_stream="{tone},-1,0"/></action>',
    )  # fmt: skip
    agent = call_sipp(
        tmp_path, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=8, codec="PCMA"
    )
    tables = sip_tables(tmp_path, trunk=customer, users={"1001": agent})
    async with pbx(db_url, tmp_path, tables) as rig:
        rig.sipps += [customer, agent]
        await customer.start()
        await agent.start("-rtp_echo")
        client = await rig.client()

        reply = await client.call.originate(
            call_id="leg_a", destination="sip:1234567890@trunk", caller_id="2000", timeout_secs=30
        )
        assert reply == {"call_id": "leg_a"}
        await client.events.wait("call.answered", call_id="leg_a", within=15)

        await client.call.originate(
            call_id="leg_b", destination="sip:1001@local", caller_id="2000", timeout_secs=30
        )
        await client.events.wait("call.answered", call_id="leg_b", within=15)

        reply = await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
        assert reply == {"leg_a": "leg_a", "leg_b": "leg_b"}
        replied_at = client.last_reply_seq
        bridged = await client.events.wait("call.bridged", call_id="leg_a")
        assert bridged.data == {"leg_a": "leg_a", "leg_b": "leg_b"}
        assert bridged.seq > replied_at  # the reply came before the event it caused

        # audio flows: the customer's 1 kHz goes to the agent (PCMU -> PCMA), comes back
        # from the agent's echo and reaches the customer again
        said_a, heard_a = await rig.tap("leg_a", 1.2)
        said_b, heard_b = await rig.tap("leg_b", 1.2)
        assert heard(said_a, TONES) == {1000.0}
        assert heard(heard_b, TONES) == {1000.0}
        assert heard(said_b, TONES) == {1000.0}
        assert heard(heard_a, TONES) == {1000.0}

        assert events_of(client, "leg_a") == ["call.ringing", "call.answered", "call.bridged"]
        assert events_of(client, "leg_b") == ["call.ringing", "call.answered"]

        listed = await client.session.list_calls()
        states = {c["call_id"]: c["state"] for c in listed["calls"]}
        assert states == {"leg_a": "bridged", "leg_b": "bridged"}

        await client.call.hangup(call_id="leg_a")
        hangup = await client.events.wait("call.hangup", call_id="leg_a")
        assert hangup.data["reason"] == "rwi" and hangup.data["hangup_by"] == "rwi"
        unbridged = await client.events.wait("call.unbridged", call_id="leg_b")
        assert unbridged.data["leg_a"] == "leg_a"
        await client.call.hangup(call_id="leg_b")
        await client.events.wait("call.hangup", call_id="leg_b")
        assert await customer.finish() == 0  # SIPp got our BYE and was satisfied
        assert await agent.finish() == 0
        await rig.replay_matches()
