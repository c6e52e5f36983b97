"""A frame-level RWI client for tests whose point is the wire itself.

Tests drive the service with the shipped client, ``rwi.client`` (``Pbx.client`` in the
e2e rig): typed commands and errors, ``events.wait``. This one sends hand-built frames
(``send_raw``, any ``meta``) and keeps every frame received in order (``frames``), for
what the shipped client cannot or must not do. Its users, and why:

- ``tests/e2e/test_serve.py``: a caller-chosen ``meta.idempotency_key`` sent again
  after a restart of ``rwi serve`` (the stored reply survives); ``rwi.client`` picks
  its own keys, and fresh ones for connection-scoped commands such as
  ``session.subscribe``.
- ``tests/integration/test_gateway.py``, ``test_gateway_fuzz.py``: malformed JSON,
  invalid frames, wrong casing, reply shapes on the wire, fuzzing.
- ``tests/integration/test_awaited_replies.py``: when a reply frame leaves the service
  relative to a logged result.
- ``tests/integration/test_database_outage.py``, ``projections/test_live_service.py``:
  not ported yet (integration tests; the port covered the e2e suite).
"""

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
