"""Seed scenario 7 (supervisor listen / whisper / barge / stop) end to end, with who
hears whom checked by spectrum in each mode: SIPp tone phones for the customer, the
agent and the supervisor, the real service, a real WebSocket client. Also: the mode
following the agent through hold, a recording of the customer's call hearing a barging
supervisor, the agent leg ending (``target_ended``), takeover, and the scope check."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rwi.client import Client, Event, Forbidden
from tests.e2e.pbx import (
    Pbx,
    Sipp,
    answered,
    events_of,
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

CUSTOMER, MUSIC, SUPERVISOR, AGENT = 440.0, 700.0, 1000.0, 1500.0
FREQS = (CUSTOMER, MUSIC, SUPERVISOR, AGENT)
LEGS = ("leg_a", "leg_b", "supervisor_leg")
WATCH = {"supervisor_call_id": "supervisor_leg", "target_call_id": "leg_b"}


def phones(tmp: Path) -> tuple[list[Sipp], dict[str, Any]]:
    cust = tone_phone(tmp, g711_file(tmp / "c.ul", 0, CUSTOMER))
    agent = tone_phone(tmp, g711_file(tmp / "a.ul", 0, AGENT))
    sup = tone_phone(tmp, g711_file(tmp / "s.ul", 0, SUPERVISOR))
    write_tone_wav(tmp / "sounds" / "hold_music.wav", MUSIC, seconds=5)
    users = {"agent1": agent, "supervisor": sup}
    return [cust, agent, sup], sip_tables(tmp, trunk=cust, users=users)


async def set_up(rig: Pbx, peers: list[Sipp]) -> Client:
    """leg_a (customer) bridged with leg_b (agent); the supervisor's leg answered."""
    await start(rig, *((p, ()) for p in peers))
    client = await rig.client("admin-token")
    await answered(client, "leg_a", "sip:5550100@trunk")
    await answered(client, "leg_b", "sip:agent1@local")
    for leg in ("leg_a", "leg_b"):
        await rig.sip_answered(leg)
    await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
    await client.events.wait("call.bridged", call_id="leg_a")
    # 1. the supervisor's own leg
    await answered(client, "supervisor_leg", "sip:supervisor@local")
    await rig.sip_answered("supervisor_leg")
    return client


async def who_hears(rig: Pbx, legs: tuple[str, ...] = LEGS) -> dict[str, set[float]]:
    """What each leg is sent, over the same second."""
    taps = await asyncio.gather(*(rig.tap(leg) for leg in legs))
    return {leg: heard(hears, FREQS) for leg, (_, hears) in zip(legs, taps, strict=True)}


async def after(client: Client, since: int, event: str, call_id: str) -> Event:
    """The first ``event`` of ``call_id`` with a ``seq`` above ``since``."""
    return await client.events.wait(event, call_id=call_id, within=10.0, after_seq=since)


async def mode(client: Client, action: str, event: str) -> Event:
    since = client.last_seq
    await client.request(action, WATCH)
    replied_at = client.last_reply_seq
    frame = await after(client, since, event, "supervisor_leg")
    assert replied_at < frame.seq  # the reply came before the event it caused
    assert {k: frame.data[k] for k in ("supervisor_call_id", "target_call_id")} == WATCH
    return frame


async def test_scenario_7_listen_whisper_barge_stop(db_url: str, tmp_path: Path) -> None:
    peers, tables = phones(tmp_path)
    async with pbx(db_url, tmp_path, tables) as rig:
        client = await set_up(rig, peers)
        assert await who_hears(rig) == {
            "leg_a": {AGENT},
            "leg_b": {CUSTOMER},
            "supervisor_leg": set(),
        }

        # 2. listen: the supervisor hears both, nobody hears it
        started = await mode(client, "supervisor.listen", "supervisor.listen.started")
        assert started.data["mode"] == "listen"
        assert await who_hears(rig) == {
            "leg_a": {AGENT},
            "leg_b": {CUSTOMER},
            "supervisor_leg": {CUSTOMER, AGENT},
        }

        # 3. whisper: the agent (only) hears the supervisor too
        await mode(client, "supervisor.whisper", "supervisor.whisper.started")
        assert await who_hears(rig) == {
            "leg_a": {AGENT},
            "leg_b": {CUSTOMER, SUPERVISOR},
            "supervisor_leg": {CUSTOMER, AGENT},
        }

        # the mode follows the agent leg through hold: the held agent hears its music and
        # the whisper, the supervisor hears the agent and what it hears
        await client.call.hold(call_id="leg_b")
        await client.events.wait("media.hold.started", call_id="leg_b")
        assert await who_hears(rig) == {
            "leg_a": set(),
            "leg_b": {MUSIC, SUPERVISOR},
            "supervisor_leg": {MUSIC, AGENT},
        }
        await client.call.unhold(call_id="leg_b")
        await client.events.wait("media.hold.stopped", call_id="leg_b")

        # 4. barge: all three hear each other; a recording of the customer's call too
        await mode(client, "supervisor.barge", "supervisor.barge.started")
        await client.record.start(call_id="leg_a")
        await client.events.wait("record.started", call_id="leg_a")
        assert await who_hears(rig) == {
            "leg_a": {AGENT, SUPERVISOR},
            "leg_b": {CUSTOMER, SUPERVISOR},
            "supervisor_leg": {CUSTOMER, AGENT},
        }
        await client.record.stop(call_id="leg_a")
        stopped = await client.events.wait("record.stopped", call_id="leg_a")
        mono = read_wav(Path(stopped.data["path"]))[:, 0]
        assert heard(mono[1600:], FREQS) == {CUSTOMER, AGENT, SUPERVISOR}

        # 5. stop: back to the two of them; the supervisor leg stays up
        reply = await client.request("supervisor.stop", WATCH)
        assert reply == {**WATCH, "mode": "barge"}
        ended = await client.events.wait("supervisor.mode.stopped", call_id="supervisor_leg")
        assert (ended.data["mode"], ended.data["reason"]) == ("barge", "rwi")
        assert await who_hears(rig) == {
            "leg_a": {AGENT},
            "leg_b": {CUSTOMER},
            "supervisor_leg": set(),
        }

        # the agent leg ending stops a mode with target_ended
        await mode(client, "supervisor.listen", "supervisor.listen.started")
        since = client.last_seq
        await client.call.hangup(call_id="leg_b")
        await client.events.wait("call.hangup", call_id="leg_b")
        ended = await after(client, since, "supervisor.mode.stopped", "supervisor_leg")
        assert ended.data["reason"] == "target_ended"
        assert await who_hears(rig, ("supervisor_leg",)) == {"supervisor_leg": set()}
        assert "call.hangup" not in events_of(client, "supervisor_leg")

        # no supervisor.control scope: forbidden
        app = await rig.client()
        with pytest.raises(Forbidden) as denied:
            await app.request("supervisor.listen", WATCH)
        assert denied.value.message == "scope required: supervisor.control"
        await rig.replay_matches()


async def test_takeover_bridges_the_supervisor_with_the_customer(
    db_url: str, tmp_path: Path
) -> None:
    peers, tables = phones(tmp_path)
    async with pbx(db_url, tmp_path, tables) as rig:
        client = await set_up(rig, peers)
        await mode(client, "supervisor.listen", "supervisor.listen.started")
        reply = await client.request("supervisor.takeover", WATCH)
        assert reply == {**WATCH, "mode": "takeover", "customer_call_id": "leg_a"}
        await client.events.wait("supervisor.takeover.started", call_id="supervisor_leg")
        hangup = await client.events.wait("call.hangup", call_id="leg_b")
        assert hangup.data["reason"] == "transfer"
        bridged = await after(client, hangup.seq, "call.bridged", "leg_a")
        assert (bridged.data["leg_a"], bridged.data["leg_b"]) == ("leg_a", "supervisor_leg")
        assert await who_hears(rig, ("leg_a", "supervisor_leg")) == {
            "leg_a": {SUPERVISOR},
            "supervisor_leg": {CUSTOMER},
        }
        stopped = [
            e.data["reason"] for e in client.events.received if e.name == "supervisor.mode.stopped"
        ]
        assert stopped == ["takeover"]
        await rig.replay_matches()
