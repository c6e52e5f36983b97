"""The crash-and-restart rig: ``rwi serve`` as a subprocess on a config naming the test's
SIPp phones, and reads of its log while it runs or after it died. Used by the crash
tests of calls, recordings and queues."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import asyncpg

from rwi.store.database import asyncpg_dsn
from tests.support.ports import free_port, port_range
from tests.support.serve import start_serve
from tests.support.sipp import Sipp


def write_config(tmp: Path, db_url: str, sip_port: int, users: dict[str, Sipp]) -> Path:
    port, (port_min, port_max) = free_port(), port_range(200)
    user_tables = "".join(
        f'[[sip.users]]\nname = "{name}"\ncontact = "sip:{name}@127.0.0.1:{peer.sip_port}"\n'
        for name, peer in users.items()
    )
    config = tmp / "rwi.toml"
    config.write_text(
        f'[rwi]\nlisten = "127.0.0.1:{port}"\n'
        '[[rwi.tokens]]\nname = "app"\ntoken = "app-token"\nscopes = ["call.control"]\n'
        '[[rwi.contexts]]\nname = "sales"\nno_answer_timeout_secs = 30\n'
        f'[database]\nurl = "{db_url}"\n[log]\nlevel = "WARNING"\n'
        f'[storage]\ndata_dir = "{tmp / "data"}"\n'
        f'[sip]\nlisten = ["udp:127.0.0.1:{sip_port}"]\nallowed_destinations = ["127.0.0.0/8"]\n'
        f"authenticate_invites = false\n{user_tables}"
        '[[routes]]\nmatch_user = "^2000$"\ncontext = "sales"\n'
        f"[media]\nport_min = {port_min}\nport_max = {port_max}\n"
    )
    return config


async def serve(config: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "RWI_DATABASE_URL"}
    proc, _ = await start_serve(config, env=env)
    return proc


async def rows(db_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


async def logged(db_url: str, observation: str, call_id: str, limit: float = 10.0) -> None:
    """Until the log holds ``observation`` for ``call_id``."""
    query = (
        "SELECT 1 FROM events WHERE type = 'observation' AND data->>'type' = $1 "
        "AND data->>'call_id' = $2"
    )
    async with asyncio.timeout(limit):
        while True:  # polling the database: no notification to wait on here
            if await rows(db_url, query, observation, call_id):
                return
            await asyncio.sleep(0.05)
