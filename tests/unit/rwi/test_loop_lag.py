"""The loop-lag probe measures a stall of the event loop (``rwi.loop_lag``)."""

from __future__ import annotations

import asyncio
import time

from rwi.loop_lag import LoopLagProbe

STALL = 0.2


async def test_a_stalled_loop_is_measured_as_lag() -> None:
    seen: list[float] = []
    sampled = asyncio.Event()

    def observe(lag: float) -> None:
        seen.append(lag)
        sampled.set()

    probe = LoopLagProbe(observe, interval=0.01)
    probe.start()
    try:
        await sampled.wait()  # the probe is asleep again, due 10 ms from now
        sampled.clear()
        time.sleep(STALL)  # noqa: ASYNC251 (the point: a callback that holds the loop)
        await sampled.wait()
    finally:
        await probe.stop()
    # woken STALL late, less the 10 ms it was due after anyway
    assert seen[-1] >= STALL - 0.01 - 0.001
    assert all(lag >= 0 for lag in seen)


async def test_stop_ends_the_probe() -> None:
    probe = LoopLagProbe(lambda _lag: None, interval=0.01)
    probe.start()
    await probe.stop()
    await probe.stop()  # idempotent
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "rwi-loop-lag"]
