"""The example bot (``examples/echo_bot.py``) run as docs/voice-bots.md says, as a
subprocess on 127.0.0.1, against the real service: a SIPp tone phone on a duplex stream
hears its own tone come back through the bot, and the bot's marks come back as
``media.stream.mark`` events once that audio was played."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.e2e.pbx import answered, g711_file, heard, pbx, sip_tables, start, tone_phone
from tests.support.ports import free_port
from tests.support.serve import ROOT

pytestmark = pytest.mark.e2e

CUSTOMER = 440.0
FREQS = (CUSTOMER, 1000.0, 1500.0)


@asynccontextmanager
async def example_bot(*args: str) -> AsyncIterator[str]:
    """The example bot's URL, once it says it is listening."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / "echo_bot.py"), "--port", str(port), *args,
        cwd=ROOT, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(20):
            line = await proc.stderr.readline()
        assert b"listening on" in line, line
        yield f"ws://127.0.0.1:{port}/echo"
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            rest = await proc.stderr.read()
            await proc.wait()
    assert proc.returncode == 0, rest.decode(errors="replace")[-3000:]


async def test_the_caller_hears_its_own_tone_back_through_the_example_bot(
    db_url: str, tmp_path: Path
) -> None:
    cust = tone_phone(tmp_path, g711_file(tmp_path / "c440.ul", 0, CUSTOMER))
    async with example_bot() as url, pbx(db_url, tmp_path, sip_tables(tmp_path, trunk=cust)) as rig:
        await start(rig, (cust, ()))
        client = await rig.client("bot-token")
        await answered(client, "leg_a", "sip:5550100@trunk")
        await rig.sip_answered("leg_a")
        _, before = await rig.tap("leg_a", 0.5)
        assert heard(before, FREQS) == set()  # an answered call alone hears nothing
        reply = await client.media.stream_start(call_id="leg_a", url=url, mode="duplex")
        sid = reply["stream_id"]
        await client.events.wait("media.stream.started", call_id="leg_a")
        said, hears = await rig.tap("leg_a", 1.0)
        assert heard(said, FREQS) == {CUSTOMER}
        assert heard(hears, FREQS) == {CUSTOMER}  # its own tone, echoed by the bot
        mark = await client.events.wait("media.stream.mark", call_id="leg_a", within=10)
        assert mark.data == {"stream_id": sid, "name": "second-1"}
        reply = await client.media.stream_stop(call_id="leg_a")
        assert reply == {"stream_ids": [sid]}
        stopped = await client.events.wait("media.stream.stopped", call_id="leg_a")
        data = stopped.data
        assert data["reason"] == "rwi" and data["frames_received"] >= 50
        assert data["frames_dropped"] == 0
