"""A recording cut by a crash (SIGKILL of `rwi serve`) is closed by the next start: the
WAV is made valid from the bytes on disk and ``record.stopped {reason: "system"}`` is
logged with the duration actually in the file (contract §8). One open at a clean stop
(SIGTERM) is stopped and logged so by the stopping process itself."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest

from rwi.client import Client
from tests.e2e.crash_rig import logged, rows, serve, write_config
from tests.e2e.pbx import g711_file, heard, read_wav, tone_phone
from tests.support.ports import free_port
from tests.support.sipp import Sipp

pytestmark = pytest.mark.e2e


async def stopped_row(db_url: str, limit: float = 15.0) -> dict[str, object]:
    """Until the log holds a ``record.stopped``; its data."""
    async with asyncio.timeout(limit):
        while True:  # polling the database: no notification to wait on here
            found = await rows(db_url, "SELECT data FROM events WHERE type = 'record.stopped'")
            if found:
                data: dict[str, object] = json.loads(found[0]["data"])
                return data
            await asyncio.sleep(0.05)


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def on_disk(path: Path, size_bytes: int, limit: float = 10.0) -> None:
    """Until ``path`` holds ``size_bytes``."""
    async with asyncio.timeout(limit):
        while True:  # a file growing: no notification to wait on here
            if size(path) >= size_bytes:
                return
            await asyncio.sleep(0.05)


def recording_config(tmp_path: Path, db_url: str, agent: Sipp) -> Path:
    config = write_config(tmp_path, db_url, free_port(), {"agent": agent})
    config.write_text(
        config.read_text().replace(
            'scopes = ["call.control"]', 'scopes = ["call.control", "record.control"]'
        )
    )
    return config


def rwi_url(config: Path) -> str:
    port = config.read_text().split('listen = "127.0.0.1:', 1)[1].split('"', 1)[0]
    return f"ws://127.0.0.1:{port}/rwi/v1"


async def recording(config: Path, db_url: str, agent: Sipp) -> tuple[Client, str, Path]:
    """A call to the agent recorded (``separate_legs``) for two seconds: the client,
    the recording id and its file."""
    await agent.start()
    client = Client(rwi_url(config), "app-token")
    await client.start()
    await client.call.originate(call_id="up", destination="sip:agent@local")
    await client.events.wait("call.answered", call_id="up", within=10)
    await logged(db_url, "sip.call.answered", "up")
    reply = await client.record.start(call_id="up", mode="separate_legs")
    await client.events.wait("record.started", call_id="up")
    path = Path(reply["path"])
    await on_disk(path, 44 + 8000 * 4 * 2)  # two seconds of stereo audio
    return client, reply["recording_id"], path


def check_file(data: dict[str, object], path: Path) -> None:
    """The WAV is valid, ``record.stopped`` says what is in it, the agent is on the left."""
    assert data["path"] == str(path)
    assert size(path) == data["size_bytes"]
    wav = read_wav(path)
    assert wav.shape[1] == 2
    assert abs(wav.shape[0] / 8000 - float(str(data["duration_secs"]))) < 0.01
    assert float(str(data["duration_secs"])) >= 2.0
    assert heard(wav[800:, 0], (440.0, 1500.0)) == {1500.0}  # what the agent said


async def test_a_recording_cut_by_a_crash_is_closed_on_the_next_start(
    db_url: str, tmp_path: Path
) -> None:
    agent = tone_phone(tmp_path, g711_file(tmp_path / "a1500.ul", 0, 1500.0))
    config = recording_config(tmp_path, db_url, agent)
    proc = await serve(config)
    try:
        client, rid, path = await recording(config, db_url, agent)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await client.close()
        proc = await serve(config)

        data = await stopped_row(db_url)
        assert (data["recording_id"], data["call_id"], data["reason"]) == (rid, "up", "system")
        check_file(data, path)  # a valid WAV again: its header says what is on disk
        assert await agent.finish(15) == 0
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)
        await agent.close()


async def test_a_recording_open_at_sigterm_is_stopped_by_the_stopping_process(
    db_url: str, tmp_path: Path
) -> None:
    agent = tone_phone(tmp_path, g711_file(tmp_path / "a1500.ul", 0, 1500.0))
    config = recording_config(tmp_path, db_url, agent)
    proc = await serve(config)
    try:
        client, rid, path = await recording(config, db_url, agent)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await client.close()

        # logged before the process ended, by it: one start of the service in the log
        found = await rows(db_url, "SELECT data FROM events WHERE type = 'record.stopped'")
        assert len(found) == 1
        data = json.loads(found[0]["data"])
        assert (data["recording_id"], data["call_id"], data["reason"]) == (rid, "up", "system")
        started = await rows(db_url, "SELECT 1 FROM events WHERE type = 'service.started'")
        assert len(started) == 1
        check_file(data, path)
        assert await agent.finish(15) == 0
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        await agent.close()
