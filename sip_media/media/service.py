"""Running the engine: the asyncio in-process runner and the common service surface.

Where it sits: the SIP adapter (and tests, benchmarks) start media with
:func:`start_media`, then ``await service.execute(effect)`` and receive observations
through :class:`~.hub.ObservationHub` (subscribers, a queue-like ``wait_for``, a
history).
``workers = 0`` runs :class:`InProcessMedia` — the engine ticks inside the caller's
event loop; ``workers = N`` runs :class:`~.worker.WorkerMedia` — N processes, each with
its own engine and clock, talking over pipes with the same effect / observation objects.

The clock (:mod:`.clock`) follows an absolute schedule: no drift, missed ticks caught up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from ..tasks import cancel_and_wait
from . import api
from .assets import ensure_assets
from .clock import TICK, run_clock_step
from .config import MediaConfig
from .engine import MediaEngine
from .hub import ObservationCallback, ObservationHub
from .stats import MediaStats

log = logging.getLogger(__name__)


class MediaService(Protocol):
    """What the adapter drives, whichever runner is behind it."""

    observations: ObservationHub

    async def execute(self, effect: api.Effect) -> api.Result:
        """Apply an effect; raises a typed ``MediaError`` on failure."""
        ...

    def stats(self) -> MediaStats:
        """The engine's counters now (summed over workers, at most a second old)."""
        ...

    async def close(self) -> None:
        """Stop the clock, finalise recordings, close sockets."""
        ...


class InProcessMedia:
    """The engine ticking inside the current asyncio event loop."""

    def __init__(self, config: MediaConfig, callback: ObservationCallback | None = None) -> None:
        self.config = config
        self.engine = MediaEngine(config)
        self.observations = ObservationHub(callback)
        self._task: asyncio.Task[None] | None = None
        self._rearm: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Create the built-in sounds and start the 20 ms clock."""
        ensure_assets(self.config.sounds_dir)
        self._task = asyncio.create_task(self._clock(), name="media-clock")
        self._arm()

    def _arm(self) -> None:
        asyncio.get_running_loop().add_reader(self.engine.fileno(), self._on_packets)

    def _on_packets(self) -> None:
        """Packets wait: relay them now, then let more gather for ``relay_batch_ms``.

        Batching keeps wake-ups (what loopback sends cost most) to a few per tick while
        pass-through packets are still forwarded within a couple of milliseconds.
        """
        loop = asyncio.get_running_loop()
        try:
            self.engine.drain()
        except Exception:  # a bug must not stop the media of every call
            log.exception("media drain failed")
        if self.engine.has_observations:
            self.observations.publish(self.engine.drain_observations())
        loop.remove_reader(self.engine.fileno())
        self._rearm = loop.call_later(self.config.relay_batch_ms / 1000.0, self._arm)

    async def _clock(self) -> None:
        next_tick = time.monotonic()
        catchup = self.config.max_catchup_ticks
        while True:
            try:
                next_tick = run_clock_step(self.engine, next_tick, catchup)
            except Exception:  # a bug must not stop the media of every call
                log.exception("media tick failed")
                next_tick = time.monotonic() + TICK
            self.observations.publish(self.engine.drain_observations())
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))

    def stats(self) -> MediaStats:
        return self.engine.snapshot()

    async def execute(self, effect: api.Effect) -> api.Result:
        """Apply an effect synchronously between two ticks."""
        try:
            return self.engine.apply(effect)
        finally:
            self.observations.publish(self.engine.drain_observations())

    async def close(self) -> None:
        """Stop ticking and release everything."""
        asyncio.get_running_loop().remove_reader(self.engine.fileno())
        if self._rearm is not None:
            self._rearm.cancel()
        if self._task is not None:
            await cancel_and_wait(self._task)
        self.engine.close()
        self.observations.publish(self.engine.drain_observations())


async def start_media(
    config: MediaConfig, callback: ObservationCallback | None = None
) -> MediaService:
    """Start the media engine in process (``workers = 0``) or in worker processes."""
    service: InProcessMedia
    if config.workers > 0:
        from .worker import WorkerMedia

        workers = WorkerMedia(config, callback)
        await workers.start()
        return workers
    service = InProcessMedia(config, callback)
    await service.start()
    return service
