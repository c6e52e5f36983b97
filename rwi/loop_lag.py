"""How late the service's event loop runs what is due: the ``rwi_event_loop_lag_seconds``
histogram.

Where it sits: a task beside the loop, started and stopped by ``rwi.runtime``. Every
command, SIP message, append and media report of the process shares one event loop
(the media clock too, when ``[media] workers = 0``), so a callback that holds it (a
large projection page, a burst of decisions) delays all of them at once. The probe asks
to be woken every ``interval`` seconds and records how much later than that it was
woken: the delay anything due at that moment suffered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

#: seconds between samples: 20 wake-ups a second cost nothing measurable
INTERVAL = 0.05


class LoopLagProbe:
    def __init__(self, observe: Callable[[float], None], interval: float = INTERVAL) -> None:
        self._observe = observe
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rwi-loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # wait(), not a suppressed await: a cancellation of stop() itself still
            # reaches its caller
            await asyncio.wait({task})

    async def _run(self) -> None:
        while True:
            # perf_counter, not loop.time(): uvloop's clock counts whole milliseconds
            asked = time.perf_counter()
            await asyncio.sleep(self._interval)
            self._observe(max(0.0, time.perf_counter() - asked - self._interval))
