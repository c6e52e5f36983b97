"""The client's event side: every event frame once, in ``seq`` order, to iterators and waits.

``Session`` hands each event it has not delivered yet (by ``seq``) to ``Events.add``;
a reconnect's replay and the live stream meet here without a gap or a repeat because
the session drops any ``seq`` it already delivered.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Event:
    """One RWI event frame: ``name`` is the frame's ``event``."""

    name: str
    seq: int
    ts: str
    call_id: str | None
    data: dict[str, Any]
    context: str | None = None

    @classmethod
    def from_frame(cls, frame: dict[str, Any]) -> Event:
        return cls(
            name=str(frame["event"]),
            seq=int(frame["seq"]),
            ts=str(frame.get("ts", "")),
            call_id=frame.get("call_id"),
            data=dict(frame.get("data") or {}),
            context=frame.get("context"),
        )

    def frame(self) -> dict[str, Any]:
        """The wire form (for ``--json`` output and logs)."""
        out: dict[str, Any] = {"rwi": "1.0", "event": self.name}
        if self.call_id is not None:
            out["call_id"] = self.call_id
        if self.context is not None:
            out["context"] = self.context
        out.update(seq=self.seq, ts=self.ts, data=self.data)
        return out

    def matches(self, name: str | None, call_id: str | None, data: dict[str, Any]) -> bool:
        return (
            (name is None or self.name == name)
            and (call_id is None or self.call_id == call_id)
            and all(self.data.get(k) == v for k, v in data.items())
        )


class Events:
    """``async for event in rwi.events`` (from the first event of the session on) and
    ``await rwi.events.wait(name, call_id=...)`` (the first matching event received,
    also one received before the wait began)."""

    def __init__(self, history: int = 10000) -> None:
        self._history: deque[Event] = deque(maxlen=history)
        self._changed = asyncio.Condition()
        self._closed = False

    @property
    def received(self) -> list[Event]:
        """Every event kept so far, oldest first."""
        return list(self._history)

    async def add(self, event: Event) -> None:
        async with self._changed:
            self._history.append(event)
            self._changed.notify_all()

    async def close(self) -> None:
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.stream()

    async def stream(self, after_seq: int = 0) -> AsyncIterator[Event]:
        """Events with ``seq > after_seq`` in order, kept ones first, then as they come;
        ends when the client is closed."""
        last = after_seq

        def ready() -> bool:
            return self._closed or self._newer(last)

        while True:
            async with self._changed:
                await self._changed.wait_for(ready)
                fresh = [e for e in self._history if e.seq > last]
                if not fresh and self._closed:
                    return
            for event in fresh:
                last = event.seq
                yield event

    def _newer(self, seq: int) -> bool:
        return bool(self._history) and self._history[-1].seq > seq

    async def wait(
        self,
        name: str | None = None,
        *,
        call_id: str | None = None,
        within: float = 30.0,
        after_seq: int = 0,
        **data: Any,
    ) -> Event:
        """The first event named ``name`` (of ``call_id``, with these ``data`` values)
        with ``seq > after_seq``; ``TimeoutError`` after ``within`` seconds."""
        return await self.wait_for(lambda e: e.matches(name, call_id, data), within, after_seq)

    async def wait_for(
        self, predicate: Callable[[Event], bool], within: float = 30.0, after_seq: int = 0
    ) -> Event:
        found: list[Event] = []

        def ready() -> bool:
            for event in self._history:
                if event.seq > after_seq and predicate(event):
                    found.append(event)
                    return True
            return self._closed

        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(ready)
        if not found:
            raise ConnectionError("the client is closed")
        return found[0]
