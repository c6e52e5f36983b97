"""``rwi call ...`` and ``rwi events``: the installed console script against the real
service with SIP and a SIPp phone; URL and token from flags, environment and config."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.pbx import RING_180, Sipp, pbx, sip_tables

pytestmark = pytest.mark.e2e

RWI = str(Path(sys.executable).parent / "rwi")


async def rwi(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        RWI, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_call_commands_and_events_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    phone = Sipp(tmp_path, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU")
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, trunk=phone)) as rig:
        rig.sipps.append(phone)
        await phone.start()
        flags = ["--url", rig.svc.url, "--token", "app-token"]

        code, out, err = await rwi(
            "call", "originate", "leg_a", "sip:100@trunk", "--wait", "answered", *flags
        )
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == "leg_a: originated"
        assert "call.answered" in lines[1] and "leg_a" in lines[1]

        # the log's story of the call, as JSON; URL and token from the environment
        env = {"RWI_URL": rig.svc.url, "RWI_TOKEN": "app-token"}
        code, out, err = await rwi("events", "--call", "leg_a", "--since", "0", "--json", env=env)
        assert code == 0, err
        frames = [json.loads(line) for line in out.splitlines()]
        assert [f["event"] for f in frames] == ["call.ringing", "call.answered"]
        assert all(f["call_id"] == "leg_a" for f in frames)

        # URL and token from the config: [rwi] listen and the first token
        config = tmp_path / "client.toml"
        config.write_text(
            f'[rwi]\nlisten = "127.0.0.1:{rig.svc.config.rwi.listen_port}"\n'
            '[[rwi.tokens]]\nname = "app"\ntoken = "app-token"\nscopes = ["call.control"]\n'
        )
        code, out, err = await rwi("call", "hold", "leg_a", "--config", str(config))
        assert (code, out) == (0, "leg_a: held\n"), err
        code, out, err = await rwi("call", "hold", "leg_a", "--off", "--json", *flags)
        assert (code, json.loads(out)) == (0, {"call_id": "leg_a"}), err
        code, out, err = await rwi("call", "list", "--attach", "leg_a", *flags)
        assert code == 0, err
        assert out.splitlines()[1].split()[:3] == ["leg_a", "answered", "outbound"]

        # a follower (listen mode, so the call stays controllable) sees the hangup live
        follower = await asyncio.create_subprocess_exec(
            RWI, "events", "--follow", "--call", "leg_a", "--mode", "listen",
            "--url", rig.svc.url, "--token", "admin-token",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            service = rig.svc.service

            async def watching() -> None:
                while True:  # polls the live state until the follower is attached
                    if service.state.calls["leg_a"].attached:
                        return
                    await asyncio.sleep(0.02)

            await asyncio.wait_for(watching(), 15)
            code, out, err = await rwi("call", "hangup", "leg_a", *flags)
            assert (code, out) == (0, "leg_a: hung up\n"), err
            assert follower.stdout is not None
            async with asyncio.timeout(15):
                line = (await follower.stdout.readline()).decode()
            assert "call.hangup" in line and "leg_a" in line and 'reason="rwi"' in line
        finally:
            follower.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                await follower.wait()
        assert await phone.finish() == 0

        code, out, err = await rwi("call", "hangup", "leg_a", *flags)
        assert code == 1 and out == ""
        assert err.startswith("rwi: call_not_found: ")
        code, _, err = await rwi("call", "hangup", "x", "--url", rig.svc.url, "--token", "bad")
        assert code == 2 and "401" in err
