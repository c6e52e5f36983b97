"""A real WebSocket bot for the audio-stream tests (contract §12), on 127.0.0.1.

``Bot`` runs a ``websockets`` server on a port from ``tests.support.ports`` and keeps,
per connection (``BotCall``), the start frame, every binary frame (as int16 samples,
interleaved as sent) and every text frame. What it answers is its ``mode``:
``listen`` (nothing), ``echo`` (every frame straight back), ``tone`` (a tone of
``reply_hz`` in 20 ms frames while connected), ``stall`` (stops reading after the start
frame: TCP fills up), ``close`` (closes after ``close_after`` frames). ``greeting``
audio, if any, is sent as soon as a connection opens, before the start frame is read
(a bot that speaks first). Tests may also ``send`` audio, marks and clear through a
connection themselves (a list is sent as one fragmented message).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.support.ports import free_port


def tone16(freq: float, n: int, rate: int, start: int = 0, amp: float = 6000.0) -> bytes:
    t = (np.arange(n) + start) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


@dataclass
class BotCall:
    ws: ServerConnection
    start: dict[str, Any] = field(default_factory=dict)
    frames: list[bytes] = field(default_factory=list)
    texts: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def samples(self, channels: int = 1) -> np.ndarray:
        """Everything received, ``(n, channels)`` int16."""
        data = b"".join(self.frames)
        return np.frombuffer(data, dtype="<i2").reshape(-1, channels)

    async def wait_frames(self, n: int, timeout: float = 10.0) -> None:
        """Until ``n`` audio frames have arrived (bounded)."""
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.frames) >= n)

    async def send(self, item: bytes | dict[str, Any] | list[bytes] | list[str]) -> None:
        await self.ws.send(json.dumps(item) if isinstance(item, dict) else item)


class Bot:
    def __init__(
        self,
        mode: str = "listen",
        reply_hz: float = 1000.0,
        close_after: int = 25,
        on_call: Callable[[BotCall], Awaitable[None]] | None = None,
        greeting: bytes | None = None,
    ) -> None:
        self.mode = mode
        self.greeting = greeting
        self.reply_hz = reply_hz
        self.close_after = close_after
        self.on_call = on_call
        self.port = free_port()
        self.calls: list[BotCall] = []
        self.connected = asyncio.Condition()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/bot"

    async def __aenter__(self) -> Bot:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.mode == "stall":  # a small window (no autotuning): the stall shows soon
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.bind(("127.0.0.1", self.port))
        self._server = await serve(self._handle, sock=sock, compression=None, max_queue=4)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def call(self, index: int = 0, timeout: float = 10.0) -> BotCall:
        """The ``index``-th connection, once its start frame is in."""
        async with asyncio.timeout(timeout), self.connected:
            await self.connected.wait_for(lambda: len(self.calls) > index)
        return self.calls[index]

    async def _handle(self, ws: ServerConnection) -> None:
        call = BotCall(ws)
        try:
            if self.greeting is not None:
                await ws.send(self.greeting)
            first = await ws.recv()
            call.start = json.loads(first)
            async with self.connected:
                self.calls.append(call)
                self.connected.notify_all()
            if self.on_call is not None:
                asyncio.get_running_loop().create_task(self.on_call(call))
            if self.mode == "stall":
                await ws.wait_closed()
                return
            replier = None
            if self.mode == "tone":
                replier = asyncio.get_running_loop().create_task(self._tone(call))
            try:
                async for message in ws:
                    if isinstance(message, bytes):
                        call.frames.append(message)
                        async with call.arrived:
                            call.arrived.notify_all()
                        if self.mode == "echo":
                            await ws.send(message)
                        if self.mode == "close" and len(call.frames) >= self.close_after:
                            await ws.close()
                            return
                    else:
                        call.texts.append(json.loads(message))
            finally:
                if replier is not None:
                    replier.cancel()
        except ConnectionClosed:
            pass
        finally:
            call.closed.set()

    async def _tone(self, call: BotCall) -> None:
        rate = int(call.start.get("sample_rate", 8000))
        n = rate // 50
        sent = 0
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        with contextlib.suppress(ConnectionClosed):
            while True:
                await call.ws.send(tone16(self.reply_hz, n, rate, sent))
                sent += n
                next_at += 0.02
                await asyncio.sleep(max(0.0, next_at - loop.time()))
