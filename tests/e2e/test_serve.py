"""`rwi serve` as a user runs it: a subprocess on the embedded PostgreSQL, stopped by
SIGTERM, restarted on the same data directory."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support.client import RwiClient
from tests.support.ports import free_port
from tests.support.serve import start_serve

pytestmark = pytest.mark.e2e


async def start(config: Path) -> tuple[asyncio.subprocess.Process, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "RWI_DATABASE_URL"}
    return await start_serve(config, stderr=asyncio.subprocess.STDOUT, env=env)


async def stop(proc: asyncio.subprocess.Process) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def test_serve_on_embedded_postgres_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "rwi.toml"
    config.write_text(
        f'[rwi]\nlisten = "127.0.0.1:{port}"\n'
        '[[rwi.tokens]]\nname = "app"\ntoken = "app-token"\nscopes = ["call.control"]\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    proc, lines = await start(config)
    assert any("database: embedded PostgreSQL in" in line for line in lines), lines
    assert (
        lines[-1] == f"rwi: listening on ws://127.0.0.1:{port}/rwi/v1 (health: /healthz, /readyz)"
    )
    url = f"ws://127.0.0.1:{port}/rwi/v1"
    client = await RwiClient.connect(url)
    meta = {"idempotency_key": "k1"}
    first = await client.request("session.subscribe", {"contexts": ["sales"]}, meta=meta)
    assert first["data"] == {"contexts": ["sales"]}
    await client.close()
    output = await stop(proc)
    assert "Traceback" not in output
    postmaster = tmp_path / "data" / "pg" / "postmaster.pid"
    assert not postmaster.exists(), "embedded PostgreSQL still running after shutdown"

    proc, _ = await start(config)
    client = await RwiClient.connect(url)
    again = await client.request("session.subscribe", {"contexts": ["sales"]}, meta=meta)
    assert again["data"] == first["data"]  # the stored reply: the log survived the restart
    await client.close()
    await stop(proc)


async def test_a_bad_config_stops_start_up_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "rwi.toml"
    config.write_text("[rwi]\nmax_conections = 5\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rwi",
        "--config",
        str(config),
        "serve",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert f"{config}: rwi.max_conections is not a known setting" in err.decode()
