"""Fan-out of media observations to subscribers, a bounded history and async waiters.

Where it sits: every runner (:class:`~.service.InProcessMedia`,
:class:`~.worker.WorkerMedia`) publishes the observations its engines drained into one
:class:`ObservationHub`; the call-leg layer subscribes to it, tests wait on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from . import api

log = logging.getLogger(__name__)
ObservationCallback = Callable[[api.Observation], None]


class ObservationHub:
    """Fan-out of observations: subscribers, bounded history, async waiters."""

    def __init__(self, callback: ObservationCallback | None = None, keep: int = 10000) -> None:
        self._callbacks: list[ObservationCallback] = [] if callback is None else [callback]
        self.history: deque[api.Observation] = deque(maxlen=keep)
        self._changed = asyncio.Event()

    def subscribe(self, callback: ObservationCallback) -> Callable[[], None]:
        """Call ``callback`` with every later observation; returns an unsubscribe function."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def publish(self, observations: list[api.Observation]) -> None:
        """Deliver a batch of observations."""
        if not observations:
            return
        for obs in observations:
            self.history.append(obs)
            for callback in self._callbacks:
                callback(obs)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[api.Observation], bool]) -> api.Observation:
        """Return the first observation in the history matching ``predicate``.

        Waits for one to arrive; callers bound the wait with ``asyncio.timeout``.
        """
        while True:
            for obs in self.history:
                if predicate(obs):
                    return obs
            self._changed.clear()
            await self._changed.wait()
