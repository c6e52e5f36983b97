"""Several supervisors end to end (contract §5 Supervisor, §9): two on one agent (a
whisper is heard by the agent only, not by the other supervisor), a supervisor moved to
another leg (``reason: moved``), a supervisor's leg hanging up (``supervisor_ended``),
and modes following their agents through an attended transfer of the customer (whisper;
listen and barge also with the agent leg held). SIPp tone phones, one tone each, the
real service, who hears whom checked by spectrum."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rwi.client import Client, Event
from tests.e2e.pbx import (
    Pbx,
    answered,
    g711_file,
    heard,
    pbx,
    sip_tables,
    start,
    tone_phone,
)  # fmt: skip
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

CUSTOMER, MUSIC, SUP1, AGENT2, AGENT1, SUP2 = 440.0, 700.0, 1000.0, 1250.0, 1500.0, 2000.0
FREQS = (CUSTOMER, MUSIC, SUP1, AGENT2, AGENT1, SUP2)
SAYS = {"trunk": CUSTOMER, "agent1": AGENT1, "agent2": AGENT2, "sup1": SUP1, "sup2": SUP2}


async def set_up(rig: Pbx, tmp: Path) -> Client:
    """leg_a (customer) bridged with leg_b (agent 1); both supervisors' legs answered."""
    client = await rig.client("admin-token")
    await answered(client, "leg_a", "sip:5550100@trunk")
    await answered(client, "leg_b", "sip:agent1@local")
    for leg in ("sup1", "sup2"):
        await answered(client, leg, f"sip:{leg}@local")
    for leg in ("leg_a", "leg_b", "sup1", "sup2"):
        await rig.sip_answered(leg)
    await client.call.bridge(leg_a="leg_a", leg_b="leg_b")
    await client.events.wait("call.bridged", call_id="leg_a")
    return client


def phones(tmp: Path) -> dict[str, Any]:
    peers = {name: tone_phone(tmp, g711_file(tmp / f"{name}.ul", 0, f)) for name, f in SAYS.items()}
    write_tone_wav(tmp / "sounds" / "hold_music.wav", MUSIC, seconds=5)
    trunk = peers.pop("trunk")
    return {"peers": [trunk, *peers.values()], "tables": sip_tables(tmp, trunk=trunk, users=peers)}


async def who_hears(rig: Pbx, *legs: str) -> dict[str, set[float]]:
    """What each leg is sent, over the same second."""
    taps = await asyncio.gather(*(rig.tap(leg) for leg in legs))
    return {leg: heard(hears, FREQS) for leg, (_, hears) in zip(legs, taps, strict=True)}


async def supervise(client: Client, sup: str, mode: str, target: str) -> list[Event]:
    """``supervisor.<mode>`` of ``sup`` on ``target``: the mode events it gave, in order."""
    since = client.last_seq
    await client.request(
        f"supervisor.{mode}", {"supervisor_call_id": sup, "target_call_id": target}
    )
    await client.events.wait(
        f"supervisor.{mode}.started", call_id=sup, within=10.0, after_seq=since
    )
    return [
        e for e in client.events.received
        if e.seq > since and e.name.startswith("supervisor.") and e.call_id == sup
    ]  # fmt: skip


async def stopped(client: Client, sup: str, since: int) -> Event:
    return await client.events.wait(
        "supervisor.mode.stopped", call_id=sup, within=10.0, after_seq=since
    )


async def test_two_supervisors_moved_and_hung_up(db_url: str, tmp_path: Path) -> None:
    kit = phones(tmp_path)
    async with pbx(db_url, tmp_path, kit["tables"]) as rig:
        await start(rig, *((p, ()) for p in kit["peers"]))
        client = await set_up(rig, tmp_path)

        # two supervisors on agent 1: one whispers, one listens
        await supervise(client, "sup1", "whisper", "leg_b")
        await supervise(client, "sup2", "listen", "leg_b")
        assert await who_hears(rig, "leg_a", "leg_b", "sup1", "sup2") == {
            "leg_a": {AGENT1},
            "leg_b": {CUSTOMER, SUP1},  # the whisper, heard by the agent only
            "sup1": {CUSTOMER, AGENT1},
            "sup2": {CUSTOMER, AGENT1},
        }

        # sup2 moves to the customer's leg and whispers there: its old mode stops
        events = await supervise(client, "sup2", "whisper", "leg_a")
        assert [(e.name, e.data["target_call_id"]) for e in events] == [
            ("supervisor.mode.stopped", "leg_b"),
            ("supervisor.whisper.started", "leg_a"),
        ]
        assert (events[0].data["mode"], events[0].data["reason"]) == ("listen", "moved")
        assert await who_hears(rig, "leg_a", "leg_b", "sup1", "sup2") == {
            "leg_a": {AGENT1, SUP2},
            "leg_b": {CUSTOMER, SUP1},
            "sup1": {CUSTOMER, AGENT1},
            "sup2": {CUSTOMER, AGENT1},
        }

        # sup1's leg hangs up: its mode stops, the agent no longer hears it
        since = client.last_seq
        await client.call.hangup(call_id="sup1")
        ended = await stopped(client, "sup1", since)
        assert (ended.data["reason"], ended.data["target_call_id"]) == (
            "supervisor_ended", "leg_b")  # fmt: skip
        assert await who_hears(rig, "leg_a", "leg_b") == {
            "leg_a": {AGENT1, SUP2},
            "leg_b": {CUSTOMER},
        }
        listed = [e.data["reason"] for e in client.events.received
                  if e.name == "supervisor.mode.stopped"]  # fmt: skip
        assert listed == ["moved", "supervisor_ended"]
        await rig.replay_matches()


async def test_modes_follow_their_agents_through_an_attended_transfer(
    db_url: str, tmp_path: Path
) -> None:
    kit = phones(tmp_path)
    async with pbx(db_url, tmp_path, kit["tables"]) as rig:
        await start(rig, *((p, ()) for p in kit["peers"]))
        client = await set_up(rig, tmp_path)
        await supervise(client, "sup1", "whisper", "leg_b")

        # agent 1 consults agent 2 while the customer holds; sup2 whispers to agent 2
        reply = await client.call.transfer_attended(call_id="leg_a", target="sip:agent2@local")
        consult = reply["consultation_call_id"]
        await client.events.wait("call.answered", call_id=consult, within=15)
        await client.events.wait("call.bridged", call_id="leg_b")
        await rig.sip_answered(consult)
        await supervise(client, "sup2", "whisper", consult)
        assert await who_hears(rig, "leg_a", "leg_b", consult, "sup1", "sup2") == {
            "leg_a": {MUSIC},
            "leg_b": {AGENT2, SUP1},
            consult: {AGENT1, SUP2},
            "sup1": {AGENT1, AGENT2},
            "sup2": {AGENT1, AGENT2},
        }

        # complete: agent 1 is hung up (sup1's mode ends), agent 2 talks to the customer
        # and sup2's whisper goes with agent 2, still heard by it only
        since = client.last_seq
        await client.call.transfer_complete(call_id="leg_a", consultation_call_id=consult)
        await client.events.wait("call.hangup", call_id="leg_b")
        ended = await stopped(client, "sup1", since)
        assert ended.data["reason"] == "target_ended"
        rebridged = await client.events.wait(
            "call.bridged", leg_a="leg_a", leg_b=consult, within=10.0
        )
        assert rebridged.data == {"leg_a": "leg_a", "leg_b": consult}
        assert await who_hears(rig, "leg_a", consult, "sup1", "sup2") == {
            "leg_a": {AGENT2},
            consult: {CUSTOMER, SUP2},
            "sup1": set(),
            "sup2": {CUSTOMER, AGENT2},
        }
        assert [e.data["reason"] for e in client.events.received
                if e.name == "supervisor.mode.stopped"] == ["target_ended"]  # fmt: skip
        await rig.replay_matches()


async def test_listen_and_barge_through_hold_and_an_attended_transfer(
    db_url: str, tmp_path: Path
) -> None:
    """sup1 listens and sup2 barges on agent 1, whose leg is put on hold; then both on
    agent 2 while agent 1 consults it, and on after the customer is transferred to it."""
    kit = phones(tmp_path)
    async with pbx(db_url, tmp_path, kit["tables"]) as rig:
        await start(rig, *((p, ()) for p in kit["peers"]))
        client = await set_up(rig, tmp_path)
        await supervise(client, "sup1", "listen", "leg_b")
        await supervise(client, "sup2", "barge", "leg_b")
        assert await who_hears(rig, "leg_a", "leg_b", "sup1", "sup2") == {
            "leg_a": {AGENT1, SUP2},
            "leg_b": {CUSTOMER, SUP2},
            "sup1": {CUSTOMER, AGENT1, SUP2},  # a barge is part of the call
            "sup2": {CUSTOMER, AGENT1},
        }

        # the agent leg held: it hears its music and the barging supervisor; both
        # supervisors hear the agent and its music; the customer, cut off, hears neither
        await client.call.hold(call_id="leg_b")
        await client.events.wait("media.hold.started", call_id="leg_b")
        assert await who_hears(rig, "leg_a", "leg_b", "sup1", "sup2") == {
            "leg_a": set(),
            "leg_b": {MUSIC, SUP2},
            "sup1": {MUSIC, AGENT1, SUP2},
            "sup2": {MUSIC, AGENT1},
        }
        await client.call.unhold(call_id="leg_b")
        await client.events.wait("media.hold.stopped", call_id="leg_b")

        # agent 1 consults agent 2 while the customer holds; both supervisors move to
        # agent 2: the barge reaches agent 2 and agent 1, who hears agent 2
        reply = await client.call.transfer_attended(call_id="leg_a", target="sip:agent2@local")
        consult = reply["consultation_call_id"]
        await client.events.wait("call.answered", call_id=consult, within=15)
        await client.events.wait("call.bridged", call_id="leg_b")
        await rig.sip_answered(consult)
        await supervise(client, "sup1", "listen", consult)
        await supervise(client, "sup2", "barge", consult)
        assert await who_hears(rig, "leg_a", "leg_b", consult, "sup1", "sup2") == {
            "leg_a": {MUSIC},
            "leg_b": {AGENT2, SUP2},
            consult: {AGENT1, SUP2},
            "sup1": {AGENT1, AGENT2, SUP2},
            "sup2": {AGENT1, AGENT2},
        }

        # complete: agent 1 is hung up, the customer talks to agent 2, and both modes
        # went with agent 2: the customer now hears the barge, both supervisors hear it
        await client.call.transfer_complete(call_id="leg_a", consultation_call_id=consult)
        await client.events.wait("call.hangup", call_id="leg_b")
        await client.events.wait("call.bridged", leg_a="leg_a", leg_b=consult, within=10.0)
        assert await who_hears(rig, "leg_a", consult, "sup1", "sup2") == {
            "leg_a": {AGENT2, SUP2},
            consult: {CUSTOMER, SUP2},
            "sup1": {CUSTOMER, AGENT2, SUP2},
            "sup2": {CUSTOMER, AGENT2},
        }
        # only the moves stopped a mode: not the hold, not the transfer
        assert [e.data["reason"] for e in client.events.received
                if e.name == "supervisor.mode.stopped"] == ["moved", "moved"]  # fmt: skip
        await rig.replay_matches()
