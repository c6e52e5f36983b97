"""Every command line the README shows, run as written against a real call history: a
SIPp call through ``./scripts/dev serve``, then replay, state, rebuild, verify, reports,
export and import with the installed ``rwi`` (``--config`` after the sub-command, as the
README writes it). A README line no test runs fails ``test_every_readme_command_is_run``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rwi.client import connect
from rwi.reporting import REPORTS
from tests.support.databases import fresh_database, server_url
from tests.support.ports import free_port, port_range
from tests.support.serve import ROOT, start_serve
from tests.support.shipped import serve, write_config
from tests.support.sipp import Sipp

pytestmark = pytest.mark.e2e

RWI = str(Path(sys.executable).parent / "rwi")

#: README command line -> where it runs. The benchmarks and the full test run have their
#: own homes; everything else runs in this module.
RUN_ELSEWHERE = {
    "./scripts/dev test": ".ci/run runs exactly this line",
    ".venv/bin/python scripts/bench_store.py": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_rwi.py": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_sip.py": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_media.py": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_media.py --conference": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_media.py --record": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_calls.py --rates 100,150,200": (
        "tests/e2e/test_benchmarks_run.py"
    ),
    ".venv/bin/python scripts/bench_rebuild.py": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_queue.py": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_streams.py": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/bench_streams.py --sweep": "tests/e2e/test_benchmarks_run.py",
    ".venv/bin/python scripts/chaos_kill.py --rate 100 --kills 5": "tests/e2e/test_drills.py",
    ".venv/bin/python scripts/chaos_db.py --rate 50 --down 5": "tests/e2e/test_drills.py",
    ".venv/bin/python scripts/soak.py --minutes 30 --rate 50": "tests/e2e/test_drills.py",
    ".venv/bin/python examples/echo_bot.py --port 8765": "tests/e2e/test_example_bot.py",
    "rwi call originate leg_a sip:1001@local --wait answered": "tests/e2e/test_cli_client.py",
    "rwi events --call leg_a --since 0": "tests/e2e/test_cli_client.py",
    "rwi call hangup leg_a": "tests/e2e/test_cli_client.py",
}
#: "A first session": run as written by ``test_the_first_session_with_the_cli`` against
#: rwi.example.toml with the kit's ports (SIPp's line through ``tests.support.sipp``,
#: which adds the kit's media and control ports and its logs)
FIRST_SESSION = (
    "sipp -sn uas -i 127.0.0.1 -p 5072 -rtp_echo",
    ".venv/bin/rwi call originate first sip:1002@local --wait answered",
    ".venv/bin/rwi events --follow --since 0 --call first --mode listen"
    " --token change-me-supervisor-token",
    ".venv/bin/rwi call hangup first",
)
RUN_HERE = {
    *FIRST_SESSION,
    "./scripts/dev serve",
    '.venv/bin/python -m websockets "ws://127.0.0.1:8080/rwi/v1?token=change-me-app-token"',
    "rwi serve [--config F] [--database-url URL] [--listen HOST:PORT]",
    "rwi migrate [--config F] [--database-url URL]",
    "rwi replay call <call_id> [--json]",
    "rwi replay state --at <seq or ISO time> [--json]",
    "rwi rebuild [projection ...]",
    "rwi verify [--limit N]",
    "rwi report <name> [--from T] [--to T] [--csv]",
    "rwi export call <call_id> -o bundle.jsonl",
    "rwi import bundle.jsonl --database-url URL",
}


def readme_commands() -> set[str]:
    """The command table's `rwi ...` cells, and each command line of the ```sh blocks."""
    text = (ROOT / "README.md").read_text()
    found = {m.group(1) for m in re.finditer(r"^\| `(rwi [^`]+)`", text, re.M)}
    found |= {m.group(1) for m in re.finditer(r"^\| `rwi [^`]+` / `(rwi [^`]+)`", text, re.M)}
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            command = re.split(r"\s+#", line)[0].strip()
            if command:
                found.add(command)
    return found


def test_every_readme_command_is_run() -> None:
    assert readme_commands() == RUN_HERE | set(RUN_ELSEWHERE)


def test_the_cli_lines_run_elsewhere_are_run_as_written() -> None:
    """test_cli_client.py runs these exact strings (it splits them into its argv)."""
    where = "tests/e2e/test_cli_client.py"
    source = (ROOT / where).read_text()
    lines = [line for line, place in RUN_ELSEWHERE.items() if place == where]
    assert len(lines) == 3
    for line in lines:
        assert f'"{line}"' in source, line


@pytest.fixture
def scratch_url() -> Iterator[str]:
    with fresh_database(server_url()) as url:
        yield url


async def run(
    *argv: str,
    stdin: bytes | None = None,
    limit: float = 60.0,
    env: dict[str, str] | None = None,
) -> str:
    """The command's output; it must exit 0."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(stdin), limit)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"{argv}: exit {proc.returncode}\n{text[-3000:]}"
    return text


async def first_session(url: str) -> None:
    """The README's first session: the websockets CLI, one JSON object typed per line,
    each reply printed before the next line is typed (EOF closes the connection)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "websockets", f"{url}?token=app-token", cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    lines = (
        '{"action": "session.subscribe", "action_id": "req-1", '
        '"params": {"contexts": ["support"]}}',
        '{"action": "session.list_calls", "action_id": "req-2"}',
    )
    printed = ""
    async with asyncio.timeout(20):
        for number, line in enumerate(lines, 1):
            proc.stdin.write(line.encode() + b"\n")
            await proc.stdin.drain()
            while f'"action_id":"req-{number}","response":"success"' not in printed:
                chunk = await proc.stdout.read(4096)
                assert chunk, f"the websockets CLI stopped: {printed}"
                printed += chunk.decode(errors="replace")
        proc.stdin.close()
        await proc.wait()
    assert '"data":{"calls":[]}' in printed, printed


async def a_call_through_the_service(tmp: Path, config: Path, db_url: str) -> str:
    """One routed SIPp call, answered over RWI, hung up by the caller; also the README's
    websocket client session against the same service."""
    sip_port = free_port()
    agent = Sipp(tmp, "uas_call", sdp_port="[media_port]", pt=0, codec="PCMU")
    written = write_config(tmp, sip_port=sip_port, agent=agent, database_url=db_url)
    assert written == config
    caller = Sipp(tmp, "uac_call", middle="", pause_ms=300)
    try:
        async with serve(config, db_url) as url:
            await first_session(url)

            async with connect(url, "app-token") as client:
                await client.session.subscribe(contexts=["support"])
                await caller.start("-s", "2000", remote=f"127.0.0.1:{sip_port}")
                incoming = await client.events.wait("call.incoming", within=15)
                assert incoming.call_id is not None
                call_id: str = incoming.call_id
                await client.call.answer(call_id=call_id)
                await client.events.wait("call.hangup", call_id=call_id, within=15)
                assert await caller.finish() == 0
    finally:
        await caller.close()
    return call_id


async def test_rwi_command_lines_on_a_real_call_history(
    db_url: str, scratch_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "rwi.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    out = await run(RWI, "migrate", "--config", str(config))
    assert "is at revision" in out
    out = await run(RWI, "migrate", "--config", str(config), "--database-url", db_url)
    assert "is at revision" in out

    call_id = await a_call_through_the_service(tmp_path, config, db_url)
    cfg = ("--config", str(config))

    story = await run(RWI, "replay", "call", call_id, *cfg)
    assert call_id in story and "call.incoming" in story
    document = json.loads(await run(RWI, "replay", "call", call_id, "--json", *cfg))
    assert document["call_id"] == call_id and document["steps"]

    answered = next(step["seq"] for step in document["steps"] if step["type"] == "call.answered")
    during = await run(RWI, "replay", "state", "--at", str(answered), *cfg)
    assert call_id in during
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    after = json.loads(await run(RWI, "replay", "state", "--at", later, "--json", *cfg))
    assert after["state"]["calls"] == {}  # the call is over

    await run(RWI, "rebuild", *cfg)
    await run(RWI, "rebuild", "calls", *cfg)
    verified = await run(RWI, "verify", "--limit", "5", *cfg)
    assert "agree with the log" in verified, verified  # (differences exit 1)
    verified = await run(RWI, *cfg, "verify", "--limit", "5")  # --config before it too
    assert "agree with the log" in verified, verified

    today = datetime.now(UTC).date()
    window = ("--from", today.isoformat(), "--to", (today + timedelta(days=1)).isoformat())
    for name in REPORTS:
        table = await run(RWI, "report", name, *window, *cfg)
        assert table.strip(), name
        csv_text = await run(RWI, "report", name, *window, "--csv", *cfg)
        assert "," in csv_text.splitlines()[0], (name, csv_text)
    per_hour = await run(RWI, "report", "calls_per_hour", *window, "--csv", *cfg)
    assert len(per_hour.strip().splitlines()) >= 2, per_hour  # header + this call's hour

    bundle = tmp_path / "bundle.jsonl"
    await run(RWI, "export", "call", call_id, "-o", str(bundle), *cfg)
    assert bundle.stat().st_size > 0
    await run(RWI, "import", str(bundle), "--database-url", scratch_url)
    copied = json.loads(
        await run(RWI, "replay", "call", call_id, "--json", "--database-url", scratch_url)
    )
    assert copied["steps"] == document["steps"]


async def test_dev_serve_with_the_config_from_the_environment(db_url: str, tmp_path: Path) -> None:
    """``./scripts/dev serve`` with no arguments: the config comes from $RWI_CONFIG."""

    port = free_port()
    config = tmp_path / "rwi.toml"
    config.write_text(
        f'[rwi]\nlisten = "127.0.0.1:{port}"\n[database]\nurl = "{db_url}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RWI_")}
    env["RWI_CONFIG"] = str(config)
    proc = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "dev"), "serve", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(60):
        while not any(line.startswith("rwi: listening on") for line in seen):
            line = (await proc.stdout.readline()).decode()
            assert line, f"dev serve exited: {seen[-20:]}"
            seen.append(line)
    assert f"ws://127.0.0.1:{port}/rwi/v1" in seen[-1]
    assert not (ROOT / "rwi.toml").exists() or "created rwi.toml" not in "".join(seen)
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0


def example_config(tmp: Path, db_url: str, *, rwi_port: int, sip_port: int, phone: int) -> Path:
    """rwi.example.toml as shipped, with the kit's ports, the test database and ``tmp``."""
    media_min, media_max = port_range(100)
    text = (ROOT / "rwi.example.toml").read_text()
    for old, new in [
        ('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{rwi_port}"'),
        ("127.0.0.1:5060", f"127.0.0.1:{sip_port}"),
        ("127.0.0.1:5072", f"127.0.0.1:{phone}"),
        ('url = ""', f'url = "{db_url}"'),
        ('"data/', f'"{tmp}/data/'),
        ('data_dir = "data"', f'data_dir = "{tmp}/data"'),
        ("port_min = 20000", f"port_min = {media_min}"),
        ("port_max = 29999", f"port_max = {media_max}"),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    config = tmp / "rwi.toml"
    config.write_text(text)
    return config


async def test_the_first_session_with_the_cli(db_url: str, tmp_path: Path) -> None:
    sipp_line, originate, follow, hangup = FIRST_SESSION
    phone = Sipp(tmp_path, "uas", builtin=True)
    assert sipp_line.split()[1:3] == ["-sn", "uas"] and sipp_line.endswith(" -rtp_echo")
    rwi_port = free_port()
    config = example_config(
        tmp_path, db_url, rwi_port=rwi_port, sip_port=free_port(), phone=phone.sip_port
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RWI_")}
    env["RWI_CONFIG"] = str(config)  # the CLI finds URL and token there, as in the checkout
    proc, _ = await start_serve(config, stderr=asyncio.subprocess.DEVNULL, env=env)
    try:
        await phone.start("-rtp_echo", calls=1, timeout=30)
        placed = await run(*shlex.split(originate), env=env)
        assert placed.splitlines()[0] == "first: originated", placed
        assert "call.answered" in placed
        watcher = await asyncio.create_subprocess_exec(
            *shlex.split(follow), cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert watcher.stdout is not None
        try:
            seen: list[str] = []
            async with asyncio.timeout(20):
                while not any("call.answered" in line for line in seen):
                    seen.append((await watcher.stdout.readline()).decode())
                    assert seen[-1], f"the watcher stopped: {seen}"
                assert "call.ringing" in "".join(seen)
                ended = await run(*shlex.split(hangup), env=env)
                assert ended == "first: hung up\n"
                line = (await watcher.stdout.readline()).decode()
            assert "call.hangup" in line and "first" in line and 'reason="rwi"' in line
        finally:
            watcher.send_signal(signal.SIGINT)
            async with asyncio.timeout(15):
                await watcher.wait()
        assert await phone.finish() == 0
    finally:
        await phone.close()
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
