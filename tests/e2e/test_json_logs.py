"""``log.format = "json"``: ``rwi serve`` writes one JSON object per log line, with the
command's action_id, the call_id it names and the seq of its record in the log (a
refused command is logged at INFO, a successful one at DEBUG)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from rwi.client import InvalidParams, UnknownAction, connect
from tests.support.ports import free_port
from tests.support.serve import start_serve

pytestmark = pytest.mark.e2e


async def test_json_log_lines_carry_action_id_call_id_and_seq(db_url: str, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "rwi.toml"
    config.write_text(
        f'[rwi]\nlisten = "127.0.0.1:{port}"\n'
        '[[rwi.tokens]]\nname = "app"\ntoken = "app-token"\nscopes = ["call.control"]\n'
        f'[database]\nurl = "{db_url}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        '[log]\nformat = "json"\n'
    )
    proc, _ = await start_serve(config, stderr=asyncio.subprocess.PIPE)
    try:
        async with connect(f"ws://127.0.0.1:{port}/rwi/v1", "app-token") as client:
            with pytest.raises(InvalidParams) as ok:
                await client.session.subscribe(contexts=["no spaces"])
            # no [sip] here: a call command is refused, and its line names the call
            with pytest.raises(UnknownAction) as refused:
                await client.call.hangup(call_id="leg_a")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
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
