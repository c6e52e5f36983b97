"""The shipped server as a user starts it, for end-to-end tests: a config file written as
the README describes, ``./scripts/dev serve`` with the README's options, and a check that
a peer's port is bound before the service is told to reach it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from tests.support.ports import free_port, port_range
from tests.support.serve import start_serve
from tests.support.sipp import Sipp


def write_config(
    tmp: Path, *, sip_port: int, agent: Sipp, transport: str = "udp", database_url: str = ""
) -> Path:
    """A config file as a user writes one: a token, a context routed from 2xxx numbers,
    SIP on UDP and TCP, the agent's phone as local user 1001 (over ``transport``)."""
    media_min, media_max = port_range(100)
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

[database]
url = "{database_url}"

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
port_min = {media_min}
port_max = {media_max}
"""
    )
    return config


@contextlib.asynccontextmanager
async def serve(config: Path, db_url: str) -> AsyncIterator[str]:
    """``./scripts/dev serve --config F --database-url URL --listen 127.0.0.1:PORT``;
    yields the RWI URL; stopped by SIGTERM, which must end it cleanly."""
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
