"""Seed scenario 8 (recording control) end to end, and recordings that end by hangup and
by max duration, keep one direction per channel (``separate_legs``) and follow their
call through an attended transfer: SIPp tone phones, the real service, and the WAV
files read back (which tone, in which channel, paused time left out)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rwi.client import CallNotFound, Client, Event, Forbidden, InvalidParams, NotFound
from tests.e2e.pbx import (
    Pbx,
    Sipp,
    answered,
    g711_file,
    heard,
    pbx,
    read_wav,
    sip_tables,
    start,
    tone_phone,
)  # fmt: skip
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

RATE = 8000
#: customer, hold music, beep (and agent 2), agent 1
CUSTOMER, MUSIC, BEEP, AGENT = 440.0, 700.0, 1000.0, 1500.0
FREQS = (CUSTOMER, MUSIC, BEEP, AGENT)


def windows(samples: np.ndarray, seconds: float = 0.2) -> list[np.ndarray]:
    size = int(RATE * seconds)
    return [samples[i : i + size] for i in range(0, samples.size - size + 1, size)]


def anywhere(samples: np.ndarray) -> set[float]:
    """Every test tone heard in some 0.2 s of ``samples``."""
    return set().union(*(heard(w, FREQS) for w in windows(samples)))


def phones(tmp: Path, agent2: bool = False) -> tuple[Sipp, Sipp, Sipp | None, dict[str, Any]]:
    cust = tone_phone(tmp, g711_file(tmp / "c440.ul", 0, CUSTOMER))
    agent = tone_phone(tmp, g711_file(tmp / "a1500.ul", 0, AGENT))
    other = tone_phone(tmp, g711_file(tmp / "a1000.ul", 0, BEEP)) if agent2 else None
    users = {"agent1": agent, **({"agent2": other} if other is not None else {})}
    write_tone_wav(tmp / "sounds" / "hold_music.wav", MUSIC, seconds=5)
    return cust, agent, other, sip_tables(tmp, trunk=cust, users=users)


async def bridged(rig: Pbx, client: Client) -> None:
    await answered(client, "leg_a", "sip:5550100@trunk")
    await answered(client, "leg_b", "sip:agent1@local")
    await rig.sip_answered("leg_a")
    await rig.sip_answered("leg_b")
    await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
    await client.events.wait("call.bridged", call_id="leg_a")


def at(event: Event) -> datetime:
    """When the service logged ``event``."""
    return datetime.fromisoformat(event.ts)


def check_stopped(stopped: Event, recording_id: str, reason: str) -> np.ndarray:
    """``record.stopped`` as §8 has it, and the file it names, read back."""
    data = stopped.data
    assert set(data) == {"recording_id", "duration_secs", "paused_secs", "path",
                         "size_bytes", "reason"}  # fmt: skip
    assert (data["recording_id"], data["reason"]) == (recording_id, reason)
    path = Path(data["path"])
    assert path.stat().st_size == data["size_bytes"]
    wav = read_wav(path)
    # duration_secs is the file's length (paused time excluded) within 0.1 s
    assert abs(wav.shape[0] / RATE - data["duration_secs"]) < 0.1
    return wav


async def test_scenario_8_start_pause_resume_stop(db_url: str, tmp_path: Path) -> None:
    cust, agent, _, tables = phones(tmp_path)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent, ()))
        client = await rig.client("admin-token")
        await bridged(rig, client)

        # 1. start recording
        reply = await client.record.start(
            call_id="leg_a", mode="mixed", beep=True, max_duration_secs=3600
        )
        replied_at = client.last_reply_seq
        rid = reply["recording_id"]
        started = await client.events.wait("record.started", call_id="leg_a")
        assert started.data["recording_id"] == rid
        assert replied_at < started.seq  # the reply came before the event
        await asyncio.sleep(1.5)  # the length of the first part, not a wait for it

        # 2. pause: the customer is put on hold meanwhile; none of it may be in the file
        reply = await client.record.pause(call_id="leg_a")
        assert reply == {"recording_id": rid}
        await client.events.wait("record.paused", call_id="leg_a")
        await client.call.hold(call_id="leg_a")
        await client.events.wait("media.hold.started", call_id="leg_a")
        _, customer_hears = await rig.tap("leg_a", 1.0)
        assert heard(customer_hears, FREQS) == {MUSIC}  # the music really played
        await client.call.unhold(call_id="leg_a")
        await client.events.wait("media.hold.stopped", call_id="leg_a")

        # 3. resume
        reply = await client.record.resume(call_id="leg_a")
        assert reply == {"recording_id": rid}
        resumed = await client.events.wait("record.resumed", call_id="leg_a")
        assert resumed.data["recording_id"] == rid
        await asyncio.sleep(1.5)

        # 4. stop
        reply = await client.record.stop(call_id="leg_a")
        assert reply == {"recording_id": rid}
        stopped = await client.events.wait("record.stopped", call_id="leg_a")
        wav = check_stopped(stopped, rid, "rwi")
        assert stopped.data["paused_secs"] >= 1.0
        assert Path(stopped.data["path"]).parent == tmp_path / "recordings"
        # the pause shortens the file: its length is the recording's wall time (from
        # record.started to record.stopped, the service's clock) less the paused time
        wall = (at(stopped) - at(started)).total_seconds()
        expected = wall - stopped.data["paused_secs"]
        assert abs(stopped.data["duration_secs"] - expected) <= 0.25, (wall, stopped)
        assert abs(wav.shape[0] / RATE - expected) <= 0.25, (wall, wav.shape)

        mono = wav[:, 0]
        assert wav.shape[1] == 1
        assert BEEP in heard(mono[: int(0.25 * RATE)], FREQS)  # the beep opens the file
        assert heard(mono[int(0.4 * RATE) :], FREQS) == {CUSTOMER, AGENT}  # both directions
        assert MUSIC not in anywhere(mono)  # the paused time is not in the file
        assert [e.name for e in client.events.received if e.name.startswith("record.")] == [
            "record.started",
            "record.paused",
            "record.resumed",
            "record.stopped",
        ]
        await rig.replay_matches()


async def test_separate_legs_stopped_by_hangup_and_max_duration(
    db_url: str, tmp_path: Path
) -> None:
    cust, agent, _, tables = phones(tmp_path)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent, ()))
        client = await rig.client("admin-token")
        await bridged(rig, client)

        # max duration: the file ends at 1 s by itself
        reply = await client.record.start(call_id="leg_a", max_duration_secs=1)
        rid = reply["recording_id"]
        stopped = await client.events.wait("record.stopped", call_id="leg_a")
        wav = check_stopped(stopped, rid, "max_duration")
        assert abs(stopped.data["duration_secs"] - 1.0) < 0.05

        # separate legs on the agent: what it says left, what it hears right; its hangup
        # stops the recording
        reply = await client.record.start(
            call_id="leg_b", mode="separate_legs", storage={"path": "agents/b.wav"}
        )
        rid = reply["recording_id"]
        await client.events.wait("record.started", call_id="leg_b")
        await asyncio.sleep(1.5)
        await client.call.hangup(call_id="leg_b")
        await client.events.wait("call.hangup", call_id="leg_b")
        stopped = await client.events.wait("record.stopped", call_id="leg_b")
        wav = check_stopped(stopped, rid, "hangup")
        assert stopped.data["path"] == str(tmp_path / "recordings" / "agents" / "b.wav")
        assert wav.shape[1] == 2
        says, hears = wav[int(0.2 * RATE) :, 0], wav[int(0.2 * RATE) :, 1]
        assert heard(says, FREQS) == {AGENT}
        assert heard(hears, FREQS) == {CUSTOMER}

        # errors of the table (§2, §8)
        with pytest.raises(InvalidParams):
            await client.record.start(call_id="leg_a", storage={"path": "../escape.wav"})
        with pytest.raises(NotFound):
            await client.record.stop(call_id="leg_a")
        with pytest.raises(CallNotFound):
            await client.record.start(call_id="leg_b")
        app = await rig.client()
        with pytest.raises(Forbidden) as forbidden:
            await app.record.start(call_id="leg_a")
        assert forbidden.value.message == "scope required: record.control"
        await rig.replay_matches()


async def test_recording_follows_the_customer_through_an_attended_transfer(
    db_url: str, tmp_path: Path
) -> None:
    cust, agent1, agent2, tables = phones(tmp_path, agent2=True)
    assert agent2 is not None
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent1, ()), (agent2, ()))
        client = await rig.client("admin-token")
        await bridged(rig, client)
        reply = await client.record.start(call_id="leg_a")
        rid = reply["recording_id"]
        await client.events.wait("record.started", call_id="leg_a")
        await asyncio.sleep(1.2)

        # the customer holds (music) while agent 1 consults agent 2
        reply = await client.call.transfer_attended(call_id="leg_a", target="sip:agent2@local")
        consult = reply["consultation_call_id"]
        await client.events.wait("call.answered", call_id=consult, within=15)
        await client.events.wait("call.bridged", call_id="leg_b")
        await rig.sip_answered(consult)
        await asyncio.sleep(1.2)
        # completing: agent 1 is hung up, the customer talks to agent 2
        await client.call.transfer_complete(call_id="leg_a", consultation_call_id=consult)
        await client.events.wait("call.hangup", call_id="leg_b")
        await asyncio.sleep(1.2)
        await client.call.hangup(call_id="leg_a")
        stopped = await client.events.wait("record.stopped", call_id="leg_a")
        mono = check_stopped(stopped, rid, "hangup")[:, 0]

        heard_in = [heard(w, FREQS) for w in windows(mono)]
        assert heard_in[0] == {CUSTOMER, AGENT}  # customer and agent 1
        assert heard_in[-1] == {CUSTOMER, BEEP}  # customer and agent 2
        assert {CUSTOMER, MUSIC} in heard_in  # the customer on hold meanwhile
        assert all(CUSTOMER in tones for tones in heard_in[1:-1] if tones)
        await rig.replay_matches()
