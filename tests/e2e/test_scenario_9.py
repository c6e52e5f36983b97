"""Seed scenario 9 (queue control) and automatic distribution end to end: a SIPp
customer on the trunk, SIPp agent phones as local users, audio checked by spectrum,
and the log replayed to the live state."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwi.client import Client, Event
from tests.e2e.pbx import (
    TONES,
    Pbx,
    Sipp,
    answered,
    events_of,
    g711_file,
    heard,
    pbx,
    sip_tables,
    start,
    tone_phone,
)  # fmt: skip
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e


def queue_events(client: Client, call_id: str) -> list[str]:
    return [e for e in events_of(client, call_id) if e.startswith("queue.")]


async def test_seed_scenario_9_enqueue_hold_unhold_dequeue_to_agent(
    db_url: str, tmp_path: Path
) -> None:
    cust = tone_phone(tmp_path, g711_file(tmp_path / "c1k.ul", 0, 1000.0))
    agent = tone_phone(tmp_path, g711_file(tmp_path / "a1500.ul", 0, 1500.0))
    other = Sipp(tmp_path, "uas_noanswer")  # the second agent: never dialled here
    tables = sip_tables(tmp_path, trunk=cust, users={"1001": agent, "1002": other})
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", 440.0, seconds=5)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (agent, ()))
        client = await rig.client("admin-token")
        await answered(client, "leg_a", "sip:5550100@trunk")
        await rig.sip_answered("leg_a")

        # 1. enqueue: queue.joined, the caller hears the queue music
        data = await client.queue.enqueue(call_id="leg_a", queue_id="support_queue",
                        priority=5, max_wait_secs=300)  # fmt: skip
        assert data == {"call_id": "leg_a", "queue_id": "support_queue", "position": 1}
        joined = await client.events.wait("queue.joined", call_id="leg_a")
        assert joined.data["queue_id"] == "support_queue"
        assert joined.data["position"] == 1
        await client.events.wait("media.play.started", call_id="leg_a")
        _, caller_hears = await rig.tap("leg_a", 1.0)
        assert heard(caller_hears, TONES) == {440.0}

        # 2., 3. hold and unhold in the queue
        await client.queue.hold(call_id="leg_a")
        await client.events.wait("queue.hold", call_id="leg_a")
        await client.queue.unhold(call_id="leg_a")
        await client.events.wait("queue.unhold", call_id="leg_a")
        status = await client.queue.status(queue_id="support_queue")
        assert [(e["call_id"], e["position"], e["held"]) for e in status["entries"]] == [
            ("leg_a", 1, False)]  # fmt: skip

        # 4. dequeue to agent 1001: dialled, bridged on answer
        data = await client.queue.dequeue(call_id="leg_a", agent_id="1001")
        leg = data["agent_call_id"]
        await client.events.wait("queue.agent_offered", call_id="leg_a")
        connected = await client.events.wait("queue.agent_connected", call_id="leg_a", within=15)
        assert connected.data["agent_id"] == "1001"
        assert connected.data["agent_call_id"] == leg
        left = await client.events.wait("queue.left", call_id="leg_a")
        assert left.data["reason"] == "connected"
        await rig.sip_answered(leg)
        _, caller_hears = await rig.tap("leg_a", 1.0)
        _, agent_hears = await rig.tap(leg, 1.0)
        assert heard(caller_hears, TONES) == {1500.0}
        assert heard(agent_hears, TONES) == {1000.0}
        assert queue_events(client, "leg_a") == [
            "queue.joined", "queue.hold", "queue.unhold", "queue.agent_offered",
            "queue.agent_connected", "queue.left",
        ]  # fmt: skip
        listed = await client.session.list_calls()
        assert {c["call_id"] for c in listed["calls"]} == {"leg_a", leg}  # the agent leg is ours

        # the customer hangs up: the agent's leg goes with it
        await client.call.hangup(call_id="leg_a")
        await client.events.wait("call.hangup", call_id=leg)
        assert await cust.finish() == 0
        assert await agent.finish() == 0
        await rig.replay_matches()


async def ring_all(rig: Pbx, *agents: str) -> Client:
    client = await rig.client("admin-token")
    for agent_id in agents:
        await client.agent.login(agent_id=agent_id)
    await answered(client, "leg_a", "sip:5550100@trunk")
    await rig.sip_answered("leg_a")
    await client.queue.enqueue(call_id="leg_a", queue_id="support")
    return client


async def offered(client: Client, agent_id: str) -> Event:
    return await client.events.wait("queue.agent_offered", agent_id=agent_id, within=10)


QUEUES = [{"name": "support", "strategy": "ring_all", "members": ["1001", "1002"],
           "agent_ring_secs": 10, "wrap_up_secs": 1}]  # fmt: skip


async def test_ring_all_first_answer_wins_and_the_other_phone_sees_cancel(
    db_url: str, tmp_path: Path
) -> None:
    cust = tone_phone(tmp_path, g711_file(tmp_path / "c1k.ul", 0, 1000.0))
    winner = tone_phone(tmp_path, g711_file(tmp_path / "a1500.ul", 0, 1500.0))
    loser = Sipp(tmp_path, "uas_noanswer")
    tables = sip_tables(tmp_path, trunk=cust, users={"1001": winner, "1002": loser})
    tables["queues"] = QUEUES
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", 440.0, seconds=5)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), (winner, ()), (loser, ()))
        client = await ring_all(rig, "1001", "1002")
        offers = [await offered(client, a) for a in ("1001", "1002")]
        legs = {o.data["agent_id"]: o.data["agent_call_id"] for o in offers}
        await client.events.wait("queue.agent_connected", call_id="leg_a", within=15)
        assert await loser.finish() == 0  # 1002's phone got our CANCEL
        hangup = await client.events.wait("call.hangup", call_id=legs["1002"])
        assert (hangup.data["reason"], hangup.data["sip_status"]) == ("canceled", 487)
        await rig.sip_answered(legs["1001"])
        _, caller_hears = await rig.tap("leg_a", 1.0)
        assert heard(caller_hears, TONES) == {1500.0}
        status = await client.queue.status(queue_id="support")
        assert status["entries"] == []
        assert {a["agent_id"]: a["state"] for a in status["agents"]} == {
            "1001": "busy", "1002": "available"}  # fmt: skip

        # the agent hangs up: wrap-up, then available again
        await client.call.hangup(call_id=legs["1001"])
        changed = await client.events.wait(
            "agent.state_changed", agent_id="1001", state="available", reason="wrap_up_over",
            within=10,
        )  # fmt: skip
        assert changed.data == {"agent_id": "1001", "state": "available", "reason": "wrap_up_over"}
        await client.call.hangup(call_id="leg_a")
        assert await winner.finish() == 0
        assert await cust.finish() == 0
        await rig.replay_matches()


async def test_caller_leaving_while_agents_ring_cancels_every_agent_phone(
    db_url: str, tmp_path: Path
) -> None:
    cust = tone_phone(tmp_path, g711_file(tmp_path / "c1k.ul", 0, 1000.0))
    phones = {"1001": Sipp(tmp_path, "uas_noanswer"), "1002": Sipp(tmp_path, "uas_noanswer")}
    tables = sip_tables(tmp_path, trunk=cust, users=phones)
    tables["queues"] = QUEUES
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", 440.0, seconds=5)
    async with pbx(db_url, tmp_path, tables) as rig:
        await start(rig, (cust, ()), *((p, ()) for p in phones.values()))
        client = await ring_all(rig, "1001", "1002")
        for agent_id in phones:
            await client.events.wait(
                "agent.state_changed", state="ringing", agent_id=agent_id, within=10
            )
        for leg in [e.data["agent_call_id"] for e in client.events.received
                    if e.name == "queue.agent_offered"]:  # fmt: skip
            await client.events.wait("call.ringing", call_id=leg)
        await client.call.hangup(call_id="leg_a")
        left = await client.events.wait("queue.left", call_id="leg_a")
        assert left.data["reason"] == "abandoned"
        for phone in phones.values():
            assert await phone.finish() == 0  # every agent phone saw CANCEL
        assert await cust.finish() == 0
        status = await client.queue.status(queue_id="support")
        assert {a["agent_id"]: a["state"] for a in status["agents"]} == {
            "1001": "available", "1002": "available"}  # fmt: skip
        await rig.replay_matches()
