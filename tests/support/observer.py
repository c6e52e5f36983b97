"""What the SIP side reported, kept for a test to wait on: bounded waits, never sleeps.

``Observer`` subscribes to anything with ``subscribe(callback)`` (``SipAdapter``,
``CallLegs``) and keeps every observation; ``wait``/``wait_for`` return the first one
that matches, or fail after ``limit`` seconds listing what was seen. ``wait_until``
polls a condition that has no notification (a counter, a leg's direction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

ObsT = TypeVar("ObsT")


class Observable(Protocol):
    def subscribe(self, callback: Callable[[Any], None], /) -> Any: ...


class Observer:
    """Every observation ``source`` reports, with waits bounded in time."""

    def __init__(self, source: Observable) -> None:
        self.seen: list[Any] = []
        self._changed = asyncio.Event()
        source.subscribe(self._add)

    def _add(self, obs: Any) -> None:
        self.seen.append(obs)
        self._changed.set()

    async def wait_for(self, match: Callable[[Any], bool], limit: float = 10.0) -> Any:
        async def find() -> Any:
            index = 0
            while True:
                for obs in self.seen[index:]:
                    if match(obs):
                        return obs
                index = len(self.seen)
                self._changed.clear()
                await self._changed.wait()

        try:
            async with asyncio.timeout(limit):
                return await find()
        except TimeoutError:
            raise AssertionError(f"no matching observation; saw {self.seen}") from None

    async def wait(self, kind: type[ObsT], leg_id: str | None = None, limit: float = 10.0) -> ObsT:
        obs: ObsT = await self.wait_for(
            lambda o: isinstance(o, kind) and (leg_id is None or o.leg_id == leg_id), limit
        )
        return obs

    def of(self, leg_id: str) -> list[Any]:
        return [o for o in self.seen if o.leg_id == leg_id]


async def wait_until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Poll ``predicate`` every 10 ms until true; fail after ``limit`` s naming ``what``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
