"""A real service (uvicorn, Starlette, PostgreSQL) on a reserved loopback port, in-process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from rwi.app import create_app
from rwi.config import Config, parse_config
from rwi.gateway.endpoint import WS_MAX_SIZE
from rwi.runtime import Runtime
from rwi.service import Service
from tests.support.ports import free_port

TOKENS = [
    {"name": "app", "token": "app-token", "scopes": ["call.control"]},
    {"name": "app2", "token": "app2-token", "scopes": ["call.control"]},
    {
        "name": "admin",
        "token": "admin-token",
        "scopes": [
            "call.control",
            "queue.control",
            "record.control",
            "supervisor.control",
            "media.stream",
        ],
    },
    {"name": "voicebot", "token": "bot-token", "scopes": ["call.control", "media.stream"]},
    {"name": "norights", "token": "none-token", "scopes": []},
]


def make_config(database_url: str, *, tables: dict[str, Any] | None = None, **rwi: Any) -> Config:
    """A test config on a reserved port; ``tables`` adds top-level tables ([sip], [media],
    routes, storage). Without a [sip] table the service runs without SIP and media."""
    raw: dict[str, Any] = {
        "rwi": {"listen": f"127.0.0.1:{free_port()}", "tokens": TOKENS, **rwi},
        "database": {"url": database_url},
        **(tables or {}),
    }
    return parse_config(raw, "<test>")


@dataclass
class Running:
    config: Config
    runtime: Runtime
    server: uvicorn.Server

    @property
    def service(self) -> Service:
        assert self.runtime.service is not None
        return self.runtime.service

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.config.rwi.listen_port}/rwi/v1"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.config.rwi.listen_port}"


@asynccontextmanager
async def running_service(config: Config) -> AsyncIterator[Running]:
    runtime = Runtime(config)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host=config.rwi.listen_host,
            port=config.rwi.listen_port,
            ws="websockets-sansio",
            ws_max_size=WS_MAX_SIZE,
            ws_per_message_deflate=False,
            lifespan="on",
            log_level="warning",
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    started = asyncio.Event()
    original = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original(sockets)
        started.set()

    server.startup = startup  # type: ignore[method-assign]
    done, _ = await asyncio.wait(
        [task, asyncio.create_task(started.wait())], timeout=30, return_when="FIRST_COMPLETED"
    )
    if task in done:
        task.result()
        raise RuntimeError("service exited during start-up")
    if not started.is_set():
        raise TimeoutError("service did not start within 30 s")
    try:
        yield Running(config, runtime, server)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
