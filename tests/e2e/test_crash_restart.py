"""A crash (SIGKILL) with calls up, then `rwi serve` again: the new process ends every
SIP dialog the dead one left (BYE to answered legs both ways, CANCEL to a ringing one),
from the dialog records in the log, and logs each outcome."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from rwi.client import Client
from tests.e2e.crash_rig import logged, rows, serve, write_config
from tests.e2e.pbx import echo_agent
from tests.support.ports import free_port
from tests.support.sipp_templates import call_sipp

pytestmark = pytest.mark.e2e


async def test_a_crash_leaves_no_phone_hanging(db_url: str, tmp_path: Path) -> None:
    agent = echo_agent(tmp_path)
    ringing = call_sipp(tmp_path, "uas_noanswer")
    sip_port = free_port()
    config = write_config(tmp_path, db_url, sip_port, {"agent": agent, "slow": ringing})
    caller = call_sipp(tmp_path, "uac_wait_bye")
    peers = [agent, ringing, caller]
    proc = await serve(config)
    try:
        await agent.start("-rtp_echo")
        await ringing.start()
        port = config.read_text().split('listen = "127.0.0.1:', 1)[1].split('"', 1)[0]
        client = Client(f"ws://127.0.0.1:{port}/rwi/v1", "app-token")
        await client.start()
        await client.session.subscribe(contexts=["sales"])
        # an answered outbound leg, a ringing one, an answered inbound call
        await client.call.originate(call_id="up", destination="sip:agent@local")
        await client.call.originate(call_id="rings", destination="sip:slow@local")
        await client.events.wait("call.answered", call_id="up", within=10)
        await client.events.wait("call.ringing", call_id="rings", within=10)
        await caller.start("-s", "2000", remote=f"127.0.0.1:{sip_port}")
        incoming = await client.events.wait("call.incoming", within=10)
        inbound = str(incoming.call_id)
        await client.call.answer(call_id=inbound)
        for call_id in ("up", inbound):
            await logged(db_url, "sip.call.answered", call_id)
        await logged(db_url, "sip.call.progress", "rings")

        proc.send_signal(signal.SIGKILL)  # no BYE, no CANCEL leaves the dying process
        await proc.wait()
        await client.close()
        proc = await serve(config)

        for peer in peers:
            assert await peer.finish(15) == 0  # each got its BYE or CANCEL, and was content
        for call_id in ("up", "rings", inbound):
            await logged(db_url, "sip.stale.ended", call_id)
        ended = await rows(
            db_url,
            "SELECT data->>'call_id' AS call_id, data->>'kind' AS kind, "
            "(data->>'status')::int AS status FROM events "
            "WHERE type = 'observation' AND data->>'type' = 'sip.stale.ended'",
        )
        assert {r["call_id"]: (r["kind"], r["status"]) for r in ended} == {
            "up": ("confirmed", 200),
            "rings": ("outbound_early", 487),
            inbound: ("confirmed", 200),
        }
        hangups = await rows(
            db_url,
            "SELECT data->>'call_id' AS call_id, data->>'reason' AS reason FROM events "
            "WHERE type = 'call.hangup'",
        )
        assert {r["call_id"]: r["reason"] for r in hangups} == {
            "up": "system",
            "rings": "system",
            inbound: "system",
        }
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
        for peer in peers:
            await peer.close()
