"""The shipped server with SIP on both transports: ``./scripts/dev serve --config F
--database-url URL --listen HOST:PORT`` exactly as the README starts it (its uvloop
event loop, its TOML parsing, its UDP and TCP transports), driven by SIPp and an RWI
client: a call in with a re-INVITE and the caller's BYE, a call out that the RWI client
hangs up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.interop.calls.conftest import Sipp, free_block, uac_reinvite
from tests.support.client import RwiClient
from tests.support.serve import start_serve
from tests.support.service import free_port

pytestmark = pytest.mark.e2e


def write_config(tmp: Path, *, sip_port: int, agent: Sipp, transport: str) -> Path:
    media = free_block(100, low=22000, high=29800)
    suffix = ";transport=tcp" if transport == "tcp" else ""
    config = tmp / "rwi.toml"
    config.write_text(
        f"""
[[rwi.tokens]]
name = "app"
token = "app-token"
scopes = ["call.control"]

[[rwi.contexts]]
name = "support"

[storage]
data_dir = "{tmp / "data"}"

[sip]
listen = ["udp:127.0.0.1:{sip_port}", "tcp:127.0.0.1:{sip_port}"]
allowed_destinations = ["127.0.0.0/8"]
authenticate_invites = false

[[sip.users]]
name = "1001"
contact = "sip:1001@127.0.0.1:{agent.sip_port}{suffix}"

[[routes]]
name = "support-line"
match_user = "^2\\\\d{{3}}$"
context = "support"

[media]
port_min = {media}
port_max = {media + 99}
"""
    )
    return config


@contextlib.asynccontextmanager
async def serve(config: Path, db_url: str) -> AsyncIterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RWI_")}
    proc, lines = await start_serve(
        config, "--database-url", db_url, "--listen", f"127.0.0.1:{port}",
        stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    assert lines[-1].startswith(f"rwi: listening on ws://127.0.0.1:{port}/rwi/v1"), lines
    try:
        yield f"ws://127.0.0.1:{port}/rwi/v1"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        text = "\n".join(lines) + out.decode(errors="replace")
        print(text[-8000:])  # the service's log, shown by pytest when the test fails
        assert proc.returncode == 0, text[-4000:]
        assert "Traceback" not in text, text[-4000:]


def bound(port: int, transport: str) -> bool:
    """Whether a socket is bound to ``port`` (listening, for TCP), read from /proc so the
    check itself never holds the port."""
    table, state = ("/proc/net/tcp", "0A") if transport == "tcp" else ("/proc/net/udp", "07")
    with open(table) as rows:
        for row in rows.readlines()[1:]:
            fields = row.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
                return True
    return False


async def listening(port: int, transport: str, limit: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit
    while not bound(port, transport):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"nothing listens on {transport} port {port}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_sipp_calls_in_and_out_through_rwi_serve(
    transport: str, db_url: str, tmp_path: Path
) -> None:
    sip_port = free_block(2)
    flags = ("-t", "t1") if transport == "tcp" else ("-t", "u1")
    agent = Sipp(tmp_path, "uas_call", sdp_port="[media_port]", pt=0, codec="PCMU")
    caller = Sipp(tmp_path, "uac_call", middle=uac_reinvite(2, "sendonly", "recvonly"),
                  pause_ms=300)  # fmt: skip
    config = write_config(tmp_path, sip_port=sip_port, agent=agent, transport=transport)
    try:
        async with serve(config, db_url) as url:
            client = await RwiClient.connect(url)
            try:
                await client.request("session.subscribe", {"contexts": ["support"]})

                # in: routed to the context, answered over RWI, re-INVITEd and hung up
                # by the caller
                await caller.start("-s", "2000", *flags, remote=f"127.0.0.1:{sip_port}")
                incoming = await client.event("call.incoming", timeout=15)
                call_in = incoming["call_id"]
                assert incoming["data"]["direction"] == "inbound"
                answered = await client.request("call.answer", {"call_id": call_in})
                assert answered["response"] == "success", answered
                await client.event("call.answered", call_id=call_in, timeout=10)
                hangup = await client.event("call.hangup", call_id=call_in, timeout=15)
                assert hangup["data"]["hangup_by"] == "remote", hangup
                assert await caller.finish() == 0  # our 200s (re-INVITE: recvonly) satisfied it

                # out: dialled to the local user over the same transport, hung up by RWI
                await agent.start(*flags, "-rtp_echo")
                # A TCP connect before SIPp listens is refused at once (UDP would retransmit)
                await listening(agent.sip_port, transport)
                reply = await client.request(
                    "call.originate",
                    {"call_id": "out-1", "destination": "sip:1001@local", "timeout_secs": 20},
                )
                assert reply["response"] == "success", reply
                await client.event("call.answered", call_id="out-1", timeout=15)
                await client.request("call.hangup", {"call_id": "out-1"})
                ended = await client.event("call.hangup", call_id="out-1", timeout=10)
                assert ended["data"]["hangup_by"] == "rwi", ended
                assert await agent.finish() == 0  # SIPp got our BYE
            finally:
                await client.close()
    finally:
        for sipp in (caller, agent):
            await sipp.close()
