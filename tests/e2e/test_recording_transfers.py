"""Recordings through blind transfers end to end (contract §5a, §5b): a recording is of
the call it was started on, so the customer's ends when a REFER sends the customer
away, and the agent's goes on through that REFER and then through the PBX re-routing
the agent's unbridged leg to another agent. The agent's is ``separate_legs``: both
directions are checked in the WAV before and after each transfer (the one-sided
recording some PBXes leave after a blind transfer would fail here)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from rwi.client import Event
from tests.e2e.pbx import (
    answered,
    g711_file,
    heard,
    pbx,
    read_wav,
    sip_tables,
    start,
    tone_phone,
)
from tests.support.sipp_templates import RING_180, UAS_BYE, call_sipp

pytestmark = pytest.mark.e2e

RATE = 8000
CUSTOMER, AGENT1, AGENT2 = 1000.0, 1500.0, 700.0
FREQS = (CUSTOMER, AGENT1, AGENT2)


def windows(samples: np.ndarray, seconds: float = 0.2) -> list[set[float]]:
    """The tones heard in each 0.2 s of ``samples``."""
    size = int(RATE * seconds)
    return [heard(samples[i : i + size], FREQS) for i in range(0, samples.size - size + 1, size)]


def read_stopped(stopped: Event, recording_id: str, reason: str) -> np.ndarray:
    """The file ``record.stopped`` names, read back; its ``duration_secs`` is the file's
    length (within 0.1 s) and ``size_bytes`` its size."""
    data = stopped.data
    assert (data["recording_id"], data["reason"], data["paused_secs"]) == (recording_id, reason, 0)
    path = Path(data["path"])
    assert path.stat().st_size == data["size_bytes"]
    wav = read_wav(path)
    assert abs(wav.shape[0] / RATE - data["duration_secs"]) < 0.1
    return wav


async def test_recordings_through_blind_transfers_by_refer_and_by_reroute(
    db_url: str, tmp_path: Path
) -> None:
    cust = call_sipp(
        tmp_path, "uas_transferee", ring=RING_180, sdp_port="[rtpstream_audio_port]", pt=0,
        codec="PCMU", refer_to=r"sip:agent2@127\.0\.0\.1:[0-9]+", frag="SIP/2.0 200 OK",
        ending=UAS_BYE, ack_action='<action><exec rtp_stream="'
        f'{g711_file(tmp_path / "c.ul", 0, CUSTOMER)},-1,0"/></action>',
    )  # fmt: skip
    agent1 = tone_phone(tmp_path, g711_file(tmp_path / "a1.ul", 0, AGENT1))
    agent2 = tone_phone(tmp_path, g711_file(tmp_path / "a2.ul", 0, AGENT2))
    tables = sip_tables(tmp_path, trunk=cust, users={"agent1": agent1, "agent2": agent2})
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent1, ()), (agent2, ()))
        client = await rig.client("admin-token")
        await answered(client, "leg_a", "sip:5550100@trunk")
        await answered(client, "leg_b", "sip:agent1@local")
        await rig.sip_answered("leg_a")
        await rig.sip_answered("leg_b")
        await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
        await client.events.wait("call.bridged", call_id="leg_a")

        ids = {}
        modes: dict[str, Literal["mixed", "separate_legs"]] = {
            "leg_a": "mixed", "leg_b": "separate_legs",
        }  # fmt: skip
        for leg, mode in modes.items():
            reply = await client.record.start(call_id=leg, mode=mode)
            ids[leg] = reply["recording_id"]
            await client.events.wait("record.started", call_id=leg)
        await asyncio.sleep(1.2)  # the length of the first part, not a wait for it

        # 1. REFER of leg_b's peer: the customer leaves, its recording ends with its leg
        reply = await client.call.transfer(call_id="leg_a", target="sip:agent2@local")
        assert reply == {"call_id": "leg_a", "method": "refer"}
        await client.events.wait("call.transfer.accepted", call_id="leg_a", within=10)
        await client.events.wait("call.hangup", call_id="leg_a", within=10)
        stopped = await client.events.wait("record.stopped", call_id="leg_a")
        customer_file = read_stopped(stopped, ids["leg_a"], "hangup")[:, 0]
        assert windows(customer_file[int(0.2 * RATE) :])[0] == {CUSTOMER, AGENT1}
        assert await cust.finish() == 0
        await client.events.wait("call.unbridged", call_id="leg_b")
        await asyncio.sleep(1.0)  # agent 1 alone for a while

        # 2. the PBX re-routes agent 1's unbridged leg to agent 2
        reply = await client.call.transfer(call_id="leg_b", target="sip:agent2@local")
        new_leg = reply["transfer_call_id"]
        await client.events.wait("call.transfer.accepted", call_id="leg_b", within=15)
        await client.events.wait("call.bridged", call_id="leg_b", within=5)
        await rig.sip_answered(new_leg)
        await asyncio.sleep(1.2)
        reply = await client.record.stop(call_id="leg_b")
        assert reply == {"recording_id": ids["leg_b"]}
        stopped = await client.events.wait("record.stopped", call_id="leg_b")
        wav = read_stopped(stopped, ids["leg_b"], "rwi")
        assert wav.shape[1] == 2
        says, hears = windows(wav[:, 0]), windows(wav[:, 1])

        # left: agent 1 all along; right: the customer, nobody, then agent 2
        assert all(tones == {AGENT1} for tones in says[1:])
        assert hears[1] == {CUSTOMER} and hears[-1] == {AGENT2}
        first_alone = hears.index(set())
        first_agent2 = hears.index({AGENT2})
        assert first_alone < first_agent2
        assert set().union(*hears[:first_alone]) == {CUSTOMER}
        assert set().union(*hears[first_alone:]) == {AGENT2}
        assert hears[first_alone:first_agent2].count(set()) >= 4  # the second alone

        for leg in ("leg_b", new_leg):
            await client.call.hangup(call_id=leg)
            await client.events.wait("call.hangup", call_id=leg)
        events = [e.name for e in client.events.received if e.name.startswith("record.")]
        assert events == ["record.started"] * 2 + ["record.stopped"] * 2
        await rig.replay_matches()
