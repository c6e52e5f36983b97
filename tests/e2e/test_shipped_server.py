"""The shipped server with SIP on both transports: ``./scripts/dev serve --config F
--database-url URL --listen HOST:PORT`` exactly as the README starts it (its uvloop
event loop, its TOML parsing, its UDP and TCP transports), driven by SIPp and an RWI
client: a call in with a re-INVITE and the caller's BYE, a call out that the RWI client
hangs up."""

from __future__ import annotations

from pathlib import Path

import pytest

from rwi.client import connect
from tests.support.ports import free_port
from tests.support.shipped import listening, serve, write_config
from tests.support.sipp import Sipp
from tests.support.sipp_templates import uac_reinvite

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_calls_in_and_out_through_rwi_serve(
    transport: str, db_url: str, tmp_path: Path
) -> None:
    sip_port = free_port()
    flags = ("-t", "t1") if transport == "tcp" else ("-t", "u1")
    agent = Sipp(tmp_path, "uas_call", sdp_port="[media_port]", pt=0, codec="PCMU")
    caller = Sipp(tmp_path, "uac_call", middle=uac_reinvite(2, "sendonly", "recvonly"),
                  pause_ms=300)  # fmt: skip
    config = write_config(tmp_path, sip_port=sip_port, agent=agent, transport=transport)
    try:
        async with serve(config, db_url) as url, connect(url, "app-token") as client:
            await client.session.subscribe(contexts=["support"])

            # in: routed to the context, answered over RWI, re-INVITEd and hung up
            # by the caller
            await caller.start("-s", "2000", *flags, remote=f"127.0.0.1:{sip_port}")
            incoming = await client.events.wait("call.incoming", within=15)
            call_in = str(incoming.call_id)
            assert incoming.data["direction"] == "inbound"
            await client.call.answer(call_id=call_in)
            await client.events.wait("call.answered", call_id=call_in, within=10)
            hangup = await client.events.wait("call.hangup", call_id=call_in, within=15)
            assert hangup.data["hangup_by"] == "remote", hangup
            assert await caller.finish() == 0  # our 200s (re-INVITE: recvonly) satisfied it

            # out: dialled to the local user over the same transport, hung up by RWI
            await agent.start(*flags, "-rtp_echo")
            # A TCP connect before SIPp listens is refused at once (UDP would retransmit)
            await listening(agent.sip_port, transport)
            await client.call.originate(
                call_id="out-1", destination="sip:1001@local", timeout_secs=20
            )
            await client.events.wait("call.answered", call_id="out-1", within=15)
            await client.call.hangup(call_id="out-1")
            ended = await client.events.wait("call.hangup", call_id="out-1", within=10)
            assert ended.data["hangup_by"] == "rwi", ended
            assert await agent.finish() == 0  # SIPp got our BYE
    finally:
        for sipp in (caller, agent):
            await sipp.close()
