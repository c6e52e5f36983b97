"""Queue races end to end with SIPp agent phones: a phone that only rings until the
queue's ring time is over (no answer, CANCEL, the next agent is tried). The test ends
with the log replayed to the live state. (Two phones answering one ``ring_all`` offer at
the same moment is unit-tested: its SIPp version could not be made deterministic under
load, a CANCEL could reach a phone still waiting to answer.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.pbx import (
    Pbx,
    Sipp,
    answered,
    echo_agent,
    pbx,
    sip_tables,
)
from tests.support.client import RwiClient
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

AGENTS = ("1001", "1002")


async def ok(client: RwiClient, action: str, **params: Any) -> dict[str, Any]:
    reply = await client.request(action, params)
    assert reply["response"] == "success", reply
    data: dict[str, Any] = reply["data"]
    return data


async def started(rig: Pbx, phones: dict[str, Sipp], trunk: Sipp) -> RwiClient:
    """The trunk (the customer: answers and echoes) and the agent phones running, the
    agents logged in, the customer ``c1`` answered and queued in ``support``."""
    for sipp in (trunk, *dict.fromkeys(phones.values())):  # a SIPp may serve two agents
        rig.sipps.append(sipp)
        calls = sum(1 for p in phones.values() if p is sipp) or 1
        await sipp.start("-rtp_echo", calls=calls, timeout=60)
    client = await rig.client("admin-token")
    await client.request("session.subscribe", {"queues": ["support"]})
    for agent_id in AGENTS:
        await ok(client, "agent.login", agent_id=agent_id)
    await answered(client, "c1", "sip:5550100@trunk")
    await rig.sip_answered("c1")
    await ok(client, "queue.enqueue", call_id="c1", queue_id="support")
    return client


def tables_for(tmp: Path, phones: dict[str, Sipp], trunk: Sipp, **queue: Any) -> dict[str, Any]:
    tables = sip_tables(tmp, trunk=trunk, users=phones)
    tables["queues"] = [{"name": "support", "members": list(AGENTS), **queue}]
    write_tone_wav(tmp / "sounds" / "hold_music.wav", 440.0, seconds=5)
    return tables


async def state_is(client: RwiClient, agent_id: str, state: str, reason: str) -> dict[str, Any]:
    return await client.wait_for(lambda f: f.get("event") == "agent.state_changed"
                                 and f["data"].get("agent_id") == agent_id
                                 and f["data"].get("state") == state
                                 and f["data"].get("reason") == reason,
                                 timeout=15)  # fmt: skip


async def offered_to(client: RwiClient, agent_id: str) -> dict[str, Any]:
    return await client.wait_for(lambda f: f.get("event") == "queue.agent_offered"
                                 and f["data"]["agent_id"] == agent_id)  # fmt: skip


async def test_an_agent_that_only_rings_is_cancelled_and_the_next_is_tried(
    db_url: str, tmp_path: Path
) -> None:
    phones = {"1001": Sipp(tmp_path, "uas_noanswer"), "1002": echo_agent(tmp_path)}
    trunk = echo_agent(tmp_path)
    # round_robin: the members' order, 1001 first
    tables = tables_for(tmp_path, phones, trunk, strategy="round_robin", agent_ring_secs=2,
                        wrap_up_secs=0, max_no_answer=0)  # fmt: skip
    async with pbx(db_url, tmp_path, tables) as rig:
        client = await started(rig, phones, trunk)
        first = await client.event("queue.agent_offered", call_id="c1", timeout=15)
        assert first["data"]["agent_id"] == "1001"
        await client.event("call.ringing", call_id=first["data"]["agent_call_id"], timeout=15)
        missed = await client.event("queue.agent_no_answer", call_id="c1", timeout=15)
        assert missed["data"]["agent_id"] == "1001"
        assert missed["data"]["reason"] == "no_answer", missed
        assert await phones["1001"].finish() == 0  # the phone saw our CANCEL (200, 487, ACK)
        connected = await client.event("queue.agent_connected", call_id="c1", timeout=15)
        assert connected["data"]["agent_id"] == "1002"
        story = [(f["event"], f["data"].get("agent_id"), f["data"].get("reason"))
                 for f in client.events()
                 if f.get("call_id") == "c1" and f["event"].startswith("queue.")]  # fmt: skip
        assert story == [
            ("queue.joined", None, None),
            ("queue.agent_offered", "1001", None),
            ("queue.agent_no_answer", "1001", "no_answer"),
            ("queue.agent_offered", "1002", None),
            ("queue.agent_connected", "1002", None),
            ("queue.left", None, "connected"),
        ]
        status = await ok(client, "queue.status", queue_id="support")
        assert {a["agent_id"]: a["state"] for a in status["agents"]} == {
            "1001": "available", "1002": "busy"}  # fmt: skip
        assert rig.svc.service.state.agents["1001"].missed == 1

        await ok(client, "call.hangup", call_id="c1")
        await state_is(client, "1002", "available", "caller_hangup")
        assert await phones["1002"].finish() == 0
        assert await trunk.finish() == 0
        await rig.replay_matches()
