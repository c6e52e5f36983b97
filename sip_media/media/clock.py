"""The 20 ms media clock: one absolute schedule step, shared by every runner.

Where it sits: :class:`~.service.InProcessMedia` (in the event loop) and
:func:`~.worker.worker_main` (in each worker process) call :func:`run_clock_step`
whenever their deadline passes. The schedule is absolute (``start + k * 20 ms``): no
drift, and when the runner was late the missed ticks run back to back (up to
``max_catchup``; older ones are skipped and counted).
"""

from __future__ import annotations

import time
from typing import Final

from .engine import MediaEngine

TICK: Final = 0.020


def run_clock_step(engine: MediaEngine, next_tick: float, max_catchup: int) -> float:
    """Run every tick that is due at the current time; return the next deadline."""
    now = time.monotonic()
    ran = 0
    while now >= next_tick:
        if ran >= max_catchup:
            missed = int((now - next_tick) / TICK) + 1
            engine.stats["skipped_ticks"] += missed
            next_tick += missed * TICK
            break
        engine.tick(now)
        next_tick += TICK
        ran += 1
    if ran > 1:
        engine.stats["late_ticks"] += ran - 1
    return next_tick
