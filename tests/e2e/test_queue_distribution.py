"""Automatic distribution end to end with SIPp agent phones: who each strategy offers a
call to, in which order; a busy and a rejecting phone passed over to the next agent;
``max_wait_secs`` cancelling the phone that rings; priorities, positions and a requeue
that keeps the time waited. Every test ends with the log replayed to the live state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rwi.client import Client
from tests.e2e.pbx import Pbx, Sipp, answered, echo_agent, pbx, sip_tables, start
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

AGENTS = ("1001", "1002", "1003")


def support(strategy: str, **more: Any) -> dict[str, Any]:
    return {"name": "support", "strategy": strategy, "members": list(AGENTS),
            "agent_ring_secs": 10, "wrap_up_secs": 0, **more}  # fmt: skip


async def rig_with(
    db_url: str, tmp: Path, phones: dict[str, Sipp], queues: list[dict[str, Any]]
) -> tuple[Sipp, dict[str, Any]]:
    trunk = echo_agent(tmp)
    tables = sip_tables(tmp, trunk=trunk, users=phones)
    tables["queues"] = queues
    write_tone_wav(tmp / "sounds" / "hold_music.wav", 440.0, seconds=5)
    return trunk, tables


async def trunk_answers(rig: Pbx, trunk: Sipp, calls: int) -> None:
    """The customers' side: answers ``calls`` calls and echoes them."""
    rig.sipps.append(trunk)
    await trunk.start("-rtp_echo", calls=calls, timeout=60)


async def caller(rig: Pbx, client: Client, call_id: str) -> None:
    await answered(client, call_id, "sip:5550100@trunk")
    await rig.sip_answered(call_id)


async def state_is(client: Client, agent_id: str, state: str, reason: str) -> None:
    await client.events.wait(
        "agent.state_changed", agent_id=agent_id, state=state, reason=reason, within=10
    )


@pytest.mark.parametrize(
    ("strategy", "order"),
    [
        # 1003 idle since its login, 1001 since its manual call, 1002 since its unpause
        ("longest_idle", ["1003", "1001", "1002"]),
        # members' order from the start (nobody offered from this queue yet)
        ("round_robin", ["1001", "1002", "1003"]),
        # 1001 took a call: last; among the others the longest idle first
        ("fewest_calls", ["1003", "1002", "1001"]),
    ],
)
async def test_each_strategy_offers_in_its_order(
    db_url: str, tmp_path: Path, strategy: str, order: list[str]
) -> None:
    phones = {a: echo_agent(tmp_path) for a in AGENTS}
    manual = {"name": "m", "strategy": "manual", "wrap_up_secs": 0}
    trunk, tables = await rig_with(db_url, tmp_path, phones, [support(strategy), manual])
    async with pbx(db_url, tmp_path, tables) as rig:
        await trunk_answers(rig, trunk, 4)
        for agent_id, phone in phones.items():
            rig.sipps.append(phone)
            await phone.start("-rtp_echo", calls=2 if agent_id == "1001" else 1)
        client = await rig.client("admin-token")
        await client.session.subscribe(queues=["support", "m"])
        for agent_id in AGENTS:
            await client.agent.login(agent_id=agent_id, queues=["support"])
        # 1001 takes a call by hand (a manual queue): one call, idle from its end
        await caller(rig, client, "c0")
        await client.queue.enqueue(call_id="c0", queue_id="m")
        await client.queue.dequeue(call_id="c0", agent_id="1001")
        await client.events.wait("queue.agent_connected", call_id="c0", within=15)
        await client.call.hangup(call_id="c0")
        await state_is(client, "1001", "available", "caller_hangup")
        # 1002 pauses: idle from its unpause
        await client.agent.pause(agent_id="1002")
        await client.agent.unpause(agent_id="1002")

        connected = []
        for call_id in ("c1", "c2", "c3"):
            await caller(rig, client, call_id)
            await client.queue.enqueue(call_id=call_id, queue_id="support")
            event = await client.events.wait("queue.agent_connected", call_id=call_id, within=15)
            connected.append(event.data["agent_id"])
        assert connected == order
        offered = [e.data["agent_id"] for e in client.events.received
                   if e.name == "queue.agent_offered" and e.call_id != "c0"]  # fmt: skip
        assert offered == order  # each agent offered once: nobody missed
        status = await client.queue.status(queue_id="support")
        assert {a["agent_id"]: a["state"] for a in status["agents"]} == dict.fromkeys(
            AGENTS, "busy"
        )

        for call_id in ("c1", "c2", "c3"):  # the callers leave: the agents' legs end too
            await client.call.hangup(call_id=call_id)
        for agent_id in AGENTS:
            await state_is(client, agent_id, "available", "caller_hangup")
        for phone in phones.values():
            assert await phone.finish() == 0
        await rig.replay_matches()


async def test_a_busy_and_a_rejecting_phone_pass_the_call_on(db_url: str, tmp_path: Path) -> None:
    phones = {
        "1001": Sipp(tmp_path, "uas_busy"),
        "1002": Sipp(tmp_path, "uas_decline"),
        "1003": echo_agent(tmp_path),
    }
    queue = support("longest_idle", retry_secs=60, max_no_answer=0)
    trunk, tables = await rig_with(db_url, tmp_path, phones, [queue])
    async with pbx(db_url, tmp_path, tables) as rig:
        await trunk_answers(rig, trunk, 1)
        await start(rig, (phones["1001"], ()), (phones["1002"], ()),
                    (phones["1003"], ("-rtp_echo",)))  # fmt: skip
        client = await rig.client("admin-token")
        for agent_id in AGENTS:  # idle longest first: 1001, then 1002, then 1003
            await client.agent.login(agent_id=agent_id)
        await caller(rig, client, "c1")
        await client.queue.enqueue(call_id="c1", queue_id="support")
        await client.events.wait("queue.agent_connected", call_id="c1", within=15)
        story = [
            (e.name, e.data.get("agent_id"), e.data.get("reason"), e.data.get("sip_status"))
            for e in client.events.received
            if e.call_id == "c1" and e.name.startswith("queue.")
        ]
        assert story == [
            ("queue.joined", None, None, None),
            ("queue.agent_offered", "1001", None, None),
            ("queue.agent_no_answer", "1001", "busy", 486),
            ("queue.agent_offered", "1002", None, None),
            ("queue.agent_no_answer", "1002", "rejected", 603),
            ("queue.agent_offered", "1003", None, None),
            ("queue.agent_connected", "1003", None, None),
            ("queue.left", None, "connected", None),
        ]
        assert await phones["1001"].finish() == 0  # 486, then our ACK
        assert await phones["1002"].finish() == 0  # 603, then our ACK
        # the two that missed are available but rest retry_secs before another offer
        status = await client.queue.status(queue_id="support")
        assert {a["agent_id"]: a["state"] for a in status["agents"]} == {
            "1001": "available", "1002": "available", "1003": "busy"}  # fmt: skip
        resting = rig.svc.service.state.agents
        assert resting["1001"].resting is not None and resting["1002"].resting is not None
        await client.call.hangup(call_id="c1")
        assert await phones["1003"].finish() == 0
        await rig.replay_matches()


async def test_max_wait_cancels_the_ringing_phone_and_the_caller_stays(
    db_url: str, tmp_path: Path
) -> None:
    phones = {"1001": Sipp(tmp_path, "uas_noanswer")}
    queue = {"name": "support", "strategy": "ring_all", "members": ["1001"],
             "agent_ring_secs": 30}  # fmt: skip
    trunk, tables = await rig_with(db_url, tmp_path, phones, [queue])
    async with pbx(db_url, tmp_path, tables) as rig:
        await trunk_answers(rig, trunk, 1)
        await start(rig, (phones["1001"], ()))
        client = await rig.client("admin-token")
        await client.agent.login(agent_id="1001")
        await caller(rig, client, "c1")
        await client.queue.enqueue(call_id="c1", queue_id="support", max_wait_secs=2)
        offer = await client.events.wait("queue.agent_offered", call_id="c1")
        await client.events.wait("call.ringing", call_id=offer.data["agent_call_id"])
        timeout = await client.events.wait("queue.wait_timeout", call_id="c1", within=10)
        left = await client.events.wait("queue.left", call_id="c1")
        assert left.data["reason"] == "timeout"
        assert left.seq > timeout.seq
        assert await phones["1001"].finish() == 0  # the agent phone got our CANCEL
        hangup = await client.events.wait("call.hangup", call_id=offer.data["agent_call_id"])
        assert hangup.data["sip_status"] == 487
        await state_is(client, "1001", "available", "canceled")
        assert "c1" in rig.svc.service.state.calls  # the caller is still up, music stopped
        assert rig.svc.service.state.calls["c1"].playback_id is None
        await client.call.hangup(call_id="c1")
        await rig.replay_matches()


async def test_priorities_positions_and_a_requeue_keeping_the_time_waited(
    db_url: str, tmp_path: Path
) -> None:
    trunk, tables = await rig_with(db_url, tmp_path, {}, [])
    async with pbx(db_url, tmp_path, tables) as rig:
        await trunk_answers(rig, trunk, 3)
        client = await rig.client("admin-token")
        positions: dict[str, int] = {}
        for call_id, priority in (("c1", 0), ("c2", 0), ("c3", 5)):
            await caller(rig, client, call_id)
            data = await client.queue.enqueue(
                call_id=call_id, queue_id="support", priority=priority
            )
            positions[call_id] = data["position"]
        assert positions == {"c1": 1, "c2": 2, "c3": 1}  # c3 went ahead of both

        def moved() -> list[tuple[str, int]]:
            return [(str(e.call_id), e.data["position"]) for e in client.events.received
                    if e.name == "queue.position_changed"]  # fmt: skip

        await client.events.wait("queue.position_changed", call_id="c2", within=10)
        assert moved() == [("c1", 2), ("c2", 3)]
        await client.queue.set_priority(call_id="c2", priority=9)
        await client.events.wait("queue.position_changed", call_id="c1", position=3, within=10)
        assert sorted(moved()[2:]) == [("c1", 3), ("c2", 1), ("c3", 2)]

        first = await client.events.wait("queue.joined", call_id="c1")
        moved_to = await client.queue.requeue(call_id="c1", queue_id="other")
        assert moved_to == {"call_id": "c1", "queue_id": "other", "position": 1}
        back = await client.queue.requeue(call_id="c1", queue_id="support")
        assert back["position"] == 3  # priority first: behind c2 (9) and c3 (5)
        lefts = [e.data["reason"] for e in client.events.received
                 if e.name == "queue.left" and e.call_id == "c1"]  # fmt: skip
        assert lefts == ["requeued", "requeued"]
        state = rig.svc.service.state
        # the entry still began to wait when c1 first joined
        assert state.queues["support"].entries["c1"].since == first.ts
        status = await client.queue.status(queue_id="support")
        waited = {e["call_id"]: e["waited_secs"] for e in status["entries"]}
        assert [e["call_id"] for e in status["entries"]] == ["c2", "c3", "c1"]
        assert waited["c1"] >= waited["c2"] >= waited["c3"]
        for call_id in ("c1", "c2", "c3"):
            await client.call.hangup(call_id=call_id)
            left = await client.events.wait(
                "queue.left", call_id=call_id, reason="abandoned", within=10
            )
            assert left.data["queue_id"] == "support"
        await rig.replay_matches()
