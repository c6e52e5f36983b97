"""``rwi call ...`` and ``rwi events``: the installed console script against the real
service with SIP and SIPp phones; URL and token from flags, environment and config. The
README's "Python client and CLI" lines run exactly as written (URL and token from the
environment); an inbound call is answered, bridged and transferred from the shell."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.pbx import RING_180, Sipp, call_sipp, db_events, pbx, sip_tables
from tests.support.sipp_templates import UAS_BYE
from tests.support.wav import write_tone_wav

pytestmark = pytest.mark.e2e

RWI = str(Path(sys.executable).parent / "rwi")
README = Path(__file__).resolve().parents[2] / "README.md"
#: the README's shell lines (tests/e2e/test_readme_commands.py maps them here)
ORIGINATE = "rwi call originate leg_a sip:1001@local --wait answered"
EVENTS = "rwi events --call leg_a --since 0"
HANGUP = "rwi call hangup leg_a"


async def rwi(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        RWI, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def until(ready: Callable[[], bool], limit: float = 15.0) -> None:
    async with asyncio.timeout(limit):
        while True:  # polls the live state
            if ready():
                return
            await asyncio.sleep(0.02)


async def test_call_commands_and_events_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    readme = README.read_text()
    for line in (ORIGINATE, EVENTS, HANGUP):
        assert f"\n{line}\n" in readme, line
    phone = Sipp(tmp_path, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU")
    async with pbx(db_url, tmp_path, sip_tables(tmp_path, users={"1001": phone})) as rig:
        rig.sipps.append(phone)
        await phone.start()
        flags = ["--url", rig.svc.url, "--token", "app-token"]
        # the README's lines as written: URL and token from the environment
        env = {"RWI_URL": rig.svc.url, "RWI_TOKEN": "app-token"}

        code, out, err = await rwi(*ORIGINATE.split()[1:], env=env)
        assert code == 0, err
        lines = out.splitlines()
        assert lines[0] == "leg_a: originated"
        assert "call.answered" in lines[1] and "leg_a" in lines[1]

        code, out, err = await rwi(*EVENTS.split()[1:], env=env)
        assert code == 0, err
        assert [line.split()[2] for line in out.splitlines()] == ["call.ringing", "call.answered"]
        assert all(line.split()[3] == "leg_a" for line in out.splitlines())

        # the log's story of the call, as JSON
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
            code, out, err = await rwi(*HANGUP.split()[1:], env=env)
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


async def test_answer_bridge_and_transfers_of_an_inbound_call_from_the_command_line(
    db_url: str, tmp_path: Path
) -> None:
    routes = [{"name": "sales-line", "match_user": "^2000$", "context": "sales"}]
    caller = call_sipp(tmp_path, "uac_wait_bye")
    # agent1 takes the REFER of a blind transfer, reports success and leaves by BYE
    agent1 = call_sipp(
        tmp_path, "uas_transferee", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU",
        refer_to=r"sip:agent2@127\.0\.0\.1:[0-9]+", frag="SIP/2.0 200 OK", ending=UAS_BYE,
    )  # fmt: skip
    agent2 = call_sipp(
        tmp_path, "uas_call", ring=RING_180, sdp_port="[media_port]", pt=0, codec="PCMU"
    )
    tables = sip_tables(tmp_path, users={"agent1": agent1, "agent2": agent2}, routes=routes)
    write_tone_wav(tmp_path / "sounds" / "hold_music.wav", 440.0, seconds=5)
    async with pbx(db_url, tmp_path, tables) as rig:
        service = rig.svc.service
        for phone in (agent1, agent2):
            rig.sipps.append(phone)
            await phone.start(timeout=60)
        env = {"RWI_URL": rig.svc.url, "RWI_TOKEN": "app-token"}

        # the context's offers, as JSON lines, live
        offers = await asyncio.create_subprocess_exec(
            RWI, "events", "--context", "sales", "--json", "--follow", env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert offers.stdout is not None
        try:
            await until(lambda: any("sales" in s.contexts for s in service.state.sessions.values()))
            rig.sipps.append(caller)
            await caller.start("-s", "2000", remote=f"127.0.0.1:{rig.sip_port}", timeout=60)
            async with asyncio.timeout(15):
                incoming = json.loads(await offers.stdout.readline())
        finally:
            offers.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                rest, err = await offers.communicate()
        assert offers.returncode == 0, err
        assert (incoming["event"], incoming["context"]) == ("call.incoming", "sales")
        assert (incoming["data"]["callee"], incoming["data"]["direction"]) == ("2000", "inbound")
        cid = incoming["call_id"]
        assert all(json.loads(line)["call_id"] == cid for line in rest.decode().splitlines())

        code, out, err = await rwi("call", "answer", cid, "--context", "sales", env=env)
        assert (code, out) == (0, f"{cid}: answered\n"), err
        await rig.sip_answered(cid)
        code, out, err = await rwi(
            "call", "originate", "leg_b", "sip:agent1@local", "--wait", "answered", env=env
        )
        assert (code, out.splitlines()[0]) == (0, "leg_b: originated"), err
        await rig.sip_answered("leg_b")
        code, out, err = await rwi("call", "bridge", cid, "leg_b", env=env)
        assert (code, out) == (0, f"{cid} + leg_b: bridged\n"), err

        # blind: leg_b is bridged, so its phone is REFERred; it leaves, the caller stays
        code, out, err = await rwi("call", "transfer", "leg_b", "sip:agent2@local", env=env)
        assert (code, out) == (0, "leg_b: transfer started method=refer\n"), err
        assert await agent1.finish() == 0  # it saw the right Refer-To and left by BYE
        await until(
            lambda: "leg_b" not in service.state.calls and not service.state.calls[cid].bridged_with
        )

        # attended: the caller holds while a consultation call rings agent2
        code, out, err = await rwi(
            "call", "transfer", cid, "sip:agent2@local", "--attended", env=env
        )
        assert code == 0, err
        started = re.fullmatch(
            rf"{re.escape(cid)}: transfer started "
            rf"consultation_call_id=(consult-{re.escape(cid)}-\S+)\n",
            out,
        )
        assert started is not None, out
        consult = started.group(1)
        await rig.sip_answered(consult)

        for leg in (consult, cid):
            code, out, err = await rwi("call", "hangup", leg, env=env)
            assert (code, out) == (0, f"{leg}: hung up\n"), err
        assert await caller.finish() == 0
        assert await agent2.finish() == 0
        await until(lambda: not service.state.calls)

    # the log's story: each command's connection attached the call it acted on (the one
    # before it had gone); the blind transfer was leg_b's, the attended one ended by the
    # consultation's hangup (the caller unheld), then the caller's hangup
    assert await db_events(db_url, f"call:{cid}") == [
        "call.incoming", "call.claimed", "call.answered", "call.attached", "call.bridged",
        "call.unbridged", "call.attached", "media.hold.started", "media.hold.stopped",
        "call.transfer.ended", "call.attached", "call.hangup",
    ]  # fmt: skip
    assert await db_events(db_url, "call:leg_b") == [
        "call.originated", "call.ringing", "call.answered", "call.attached", "call.attached",
        "call.transferred", "call.transfer.accepted", "call.hangup",
    ]  # fmt: skip
