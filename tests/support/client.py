"""A small RWI client for tests: send commands, await replies and events by name."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import websockets

_ids = itertools.count(1)


class RwiClient:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._new = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, url: str, token: str | None = "app-token", **kw: Any) -> RwiClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        ws = await websockets.connect(url, additional_headers=headers, max_size=None, **kw)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                frame = json.loads(text)
                async with self._new:
                    self.frames.append(frame)
                    self._new.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            async with self._new:
                self._new.notify_all()

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            async with self._new:
                while True:
                    for frame in self.frames:
                        if predicate(frame):
                            return frame
                    if self._reader.done():
                        raise ConnectionError(f"connection closed; frames: {self.frames[-5:]}")
                    await self._new.wait()

        return await asyncio.wait_for(find(), timeout)

    async def request(
        self, action: str, params: dict[str, Any] | None = None, timeout: float = 10.0, **extra: Any
    ) -> dict[str, Any]:
        action_id = f"t-{next(_ids)}"
        frame: dict[str, Any] = {"rwi": "1.0", "action_id": action_id, "action": action}
        if params is not None:
            frame["params"] = params
        frame.update(extra)
        await self.ws.send(json.dumps(frame))
        return await self.reply(action_id, timeout)

    async def reply(self, action_id: str, timeout: float = 10.0) -> dict[str, Any]:
        return await self.wait_for(
            lambda f: f.get("action_id") == action_id and "response" in f, timeout
        )

    async def event(self, name: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        return await self.wait_for(
            lambda f: f.get("event") == name and all(f.get(k) == v for k, v in match.items()),
            timeout,
        )

    def events(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if "event" in f]
