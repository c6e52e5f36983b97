"""``log.format = "json"``: ``rwi serve`` writes one JSON object per log line, with the
command's action_id, the call_id it names and the seq of its record in the log (a
refused command is logged at INFO, a successful one at DEBUG); with ``[sip]`` and a real
call, a line of the call's SIP side names the call too."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from rwi.client import InvalidParams, UnknownAction, connect
from tests.support.ports import free_port, port_range
from tests.support.serve import start_serve
from tests.support.sipp import Sipp
from tests.support.sipp_templates import RING_180

pytestmark = pytest.mark.e2e


def json_log_config(tmp_path: Path, port: int, db_url: str, sections: str = "") -> Path:
    """A config of ``rwi serve`` with JSON logs, plus the given ``sections``."""
    config = tmp_path / "rwi.toml"
    config.write_text(
        f'[rwi]\nlisten = "127.0.0.1:{port}"\n'
        '[[rwi.tokens]]\nname = "app"\ntoken = "app-token"\nscopes = ["call.control"]\n'
        f'[database]\nurl = "{db_url}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        '[log]\nformat = "json"\n' + sections
    )
    return config


async def stop(proc: asyncio.subprocess.Process) -> bytes:
    """SIGTERM ``rwi serve``; what it wrote to stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return err


def log_lines(proc: asyncio.subprocess.Process, err: bytes) -> list[dict[str, Any]]:
    """It exited 0, and each line it wrote is one JSON object."""
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in err.decode().splitlines() if line.strip()]


async def test_json_log_lines_carry_action_id_call_id_and_seq(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = json_log_config(tmp_path, port, db_url)
    proc, _ = await start_serve(config, stderr=asyncio.subprocess.PIPE)
    try:
        async with connect(f"ws://127.0.0.1:{port}/rwi/v1", "app-token") as client:
            with pytest.raises(InvalidParams) as ok:
                await client.session.subscribe(contexts=["no spaces"])
            # no [sip] here: a call command is refused, and its line names the call
            with pytest.raises(UnknownAction) as refused:
                await client.call.hangup(call_id="leg_a")
    finally:
        err = await stop(proc)
    lines = log_lines(proc, err)
    assert lines, "no log lines"
    for line in lines:
        assert {"ts", "level", "logger", "message"} <= set(line), line
    by_action = {line["action_id"]: line for line in lines if "action_id" in line}
    subscribed = by_action[ok.value.action_id]
    assert subscribed["message"] == "session.subscribe invalid_params"
    assert subscribed["level"] == "INFO"
    assert isinstance(subscribed["seq"], int) and "call_id" not in subscribed
    hangup = by_action[refused.value.action_id]
    assert hangup["message"] == "call.hangup unknown_action"
    assert hangup["call_id"] == "leg_a" and hangup["seq"] > subscribed["seq"]
    # uvicorn's own lines are JSON too
    assert any(line["logger"].startswith("uvicorn") for line in lines), lines


async def test_json_log_line_of_a_call_s_sip_side_carries_its_call_id(
    db_url: str, tmp_path: Path
) -> None:
    # a phone that answers and never sends RTP: after 1 s the service hangs up (BYE)
    phone = Sipp(tmp_path, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU")
    port, sip_port = free_port(), free_port()
    media_min, media_max = port_range(20)
    config = json_log_config(
        tmp_path, port, db_url,
        f'[sip]\nlisten = ["udp:127.0.0.1:{sip_port}"]\n'
        'allowed_destinations = ["127.0.0.0/8"]\nauthenticate_invites = false\n'
        f'[[sip.trunks]]\nname = "trunk"\nproxy = "127.0.0.1:{phone.sip_port}"\n'
        f"[media]\nport_min = {media_min}\nport_max = {media_max}\nrtp_timeout_s = 1.0\n",
    )  # fmt: skip
    await phone.start()
    proc, _ = await start_serve(config, stderr=asyncio.subprocess.PIPE)
    try:
        async with connect(f"ws://127.0.0.1:{port}/rwi/v1", "app-token") as rwi:
            await rwi.call.originate(call_id="leg_a", destination="sip:100@trunk")
            await rwi.events.wait("call.answered", call_id="leg_a", within=15)
            hangup = await rwi.events.wait("call.hangup", call_id="leg_a", within=15)
        assert hangup.data["reason"] == "rtp_timeout", hangup
        assert await phone.finish() == 0  # it got our BYE
    finally:
        await phone.close()
        err = await stop(proc)
    lines = log_lines(proc, err)
    timeout = [line for line in lines if "RTP timeout" in line["message"]]
    assert len(timeout) == 1, lines
    assert timeout[0]["message"] == "leg leg_a: RTP timeout, hanging up"
    assert (timeout[0]["logger"], timeout[0]["call_id"]) == ("sip_media.calls", "leg_a")
