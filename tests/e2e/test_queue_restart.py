"""Queues and agents survive a crash: SIGKILL with a caller queued and an agent phone
ringing for it, then `rwi serve` again. The queued call and the agent's leg end (both
phones get their BYE or CANCEL), the entry leaves as ``queue.left {reason: system}``,
and the agents' logins and pauses come back from the log."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from rwi.client import Client
from tests.e2e.crash_rig import logged, rows, serve, write_config
from tests.e2e.pbx import Sipp, echo_agent
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

ACD = (
    '[[queues]]\nname = "support"\nstrategy = "ring_all"\nmembers = ["slow", "away"]\n'
    "agent_ring_secs = 30\n"
    '[[agents]]\nid = "slow"\n[[agents]]\nid = "away"\n'
)


async def connect(port: str) -> Client:
    client = Client(f"ws://127.0.0.1:{port}/rwi/v1", "acd-token")
    await client.start()
    return client


async def test_a_crash_ends_queued_calls_and_keeps_agent_states(
    db_url: str, tmp_path: Path
) -> None:
    cust = echo_agent(tmp_path)
    slow = Sipp(tmp_path, "uas_noanswer")
    sip_port = free_port()
    config = write_config(tmp_path, db_url, sip_port, {"cust": cust, "slow": slow})
    text = config.read_text().replace(
        "[[rwi.contexts]]",
        '[[rwi.tokens]]\nname = "acd"\ntoken = "acd-token"\n'
        'scopes = ["call.control", "queue.control"]\n[[rwi.contexts]]',
    )
    config.write_text(text + ACD)
    port = text.split('listen = "127.0.0.1:', 1)[1].split('"', 1)[0]
    proc = await serve(config)
    try:
        await cust.start("-rtp_echo")
        await slow.start()
        client = await connect(port)
        for action, params in (
            ("agent.login", {"agent_id": "slow"}),
            ("agent.login", {"agent_id": "away"}),
            ("agent.pause", {"agent_id": "away", "reason": "lunch"}),
            ("call.originate", {"call_id": "cust", "destination": "sip:cust@local"}),
        ):
            await client.request(action, params)  # raises unless a success
        await client.events.wait("call.answered", call_id="cust", within=10)
        await logged(db_url, "sip.call.answered", "cust")
        await client.queue.enqueue(call_id="cust", queue_id="support")
        offer = await client.events.wait("queue.agent_offered", call_id="cust", within=10)
        leg = offer.data["agent_call_id"]
        await logged(db_url, "sip.call.progress", leg)

        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await client.close()
        proc = await serve(config)

        assert await cust.finish(15) == 0  # BYE
        assert await slow.finish(15) == 0  # CANCEL
        left = await rows(
            db_url,
            "SELECT data->>'call_id' AS call_id, data->>'reason' AS reason FROM events "
            "WHERE type = 'queue.left'",
        )
        assert [(r["call_id"], r["reason"]) for r in left] == [("cust", "system")]
        client = await connect(port)
        status = await client.queue.status(queue_id="support")
        assert status["entries"] == []
        assert {a["agent_id"]: a["state"] for a in status["agents"]} == {
            "slow": "available",
            "away": "paused",
        }
        await client.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
        for peer in (cust, slow):
            await peer.close()
