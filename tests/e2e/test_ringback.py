"""What the waiting party hears while an agent's phone rings: local ringback, or hold
music (call.originate's ringback_target / hold_music_target), end to end with audio."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwi.client import InvalidParams
from tests.e2e.pbx import answered, echo_agent, pbx, sip_tables, start
from tests.support.audio import heard
from tests.support.sipp import Sipp
from tests.support.sipp_templates import RING_180, call_sipp
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

FREQS = (425.0, 440.0, 1000.0)


def slow_agent(tmp: Path, ring_ms: int) -> Sipp:
    """Rings (180) for ``ring_ms`` before answering; echoes our audio."""
    ring = RING_180 + f'\n  <pause milliseconds="{ring_ms}"/>'
    return call_sipp(tmp, "uas_call", ring=ring, sdp_port="[media_port]", pt=0, codec="PCMU")


async def test_customer_hears_ringback_then_hold_music_while_agents_ring(
    db_url: str, tmp_path: Path
) -> None:
    customer = echo_agent(tmp_path)
    agent1, agent2 = slow_agent(tmp_path, 2500), slow_agent(tmp_path, 2500)
    tables = sip_tables(tmp_path, users={"customer": customer, "a1": agent1, "a2": agent2})
    write_tone_wav(tmp_path / "sounds" / "wait.wav", 440.0, seconds=5)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (customer, ("-rtp_echo",)), (agent1, ("-rtp_echo",)),
                    (agent2, ("-rtp_echo",)))  # fmt: skip
        client = await rig.client()
        await answered(client, "customer", "sip:customer@local")

        await client.call.originate(
            call_id="agent1", destination="sip:a1@local", ringback="local",
            ringback_target="customer",
        )  # fmt: skip
        await client.events.wait("call.ringing", call_id="agent1", within=10)
        started = await client.events.wait("media.play.started", call_id="customer")
        assert started.data["playback_id"] == "rb-agent1"
        _, customer_hears = await rig.tap("customer", 0.8)
        assert heard(customer_hears, FREQS) == {425.0}  # EU ringback
        await client.events.wait("call.answered", call_id="agent1", within=10)
        finished = await client.events.wait("media.play.finished", call_id="customer")
        assert finished.data == {"playback_id": "rb-agent1", "interrupted": True,
                                    "reason": "answered"}  # fmt: skip
        await client.call.hangup(call_id="agent1")

        await client.call.originate(
            call_id="agent2", destination="sip:a2@local", hold_music_target="customer",
            hold_music={"type": "file", "uri": "wait.wav"},
        )  # fmt: skip
        await client.events.wait("media.play.started", playback_id="hm-agent2")
        _, customer_hears = await rig.tap("customer", 0.8)
        assert heard(customer_hears, FREQS) == {440.0}
        await client.events.wait("call.answered", call_id="agent2", within=10)
        await client.events.wait("media.play.finished", playback_id="hm-agent2")
        await client.call.bridge(leg_a="customer", leg_b="agent2")
        await client.events.wait("call.bridged", call_id="customer")
        with pytest.raises(InvalidParams):
            await client.call.originate(
                call_id="x", destination="sip:a2@local", hold_music_target="customer",
                hold_music={"type": "file", "uri": "nope.wav"},
            )  # fmt: skip
        for leg in ("customer", "agent2"):
            await client.call.hangup(call_id=leg)
        await client.events.wait("call.hangup", call_id="agent2")
        await rig.replay_matches()
