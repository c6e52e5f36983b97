"""The 20 ms clock: absolute schedule, catch-up when late, skip beyond the limit."""

from __future__ import annotations

from typing import Any

import pytest

from sip_media.media import clock
from sip_media.media.clock import TICK, run_clock_step


class FakeEngine:
    def __init__(self) -> None:
        self.ticks = 0
        self.stats = {"late_ticks": 0, "skipped_ticks": 0}

    def tick(self, now: float) -> None:
        self.ticks += 1


def at(monkeypatch: pytest.MonkeyPatch, t: float) -> None:
    monkeypatch.setattr(clock.time, "monotonic", lambda: t)


def test_on_time_runs_one_tick_and_keeps_the_absolute_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine: Any = FakeEngine()
    nxt = 100.0
    for k in range(1000):  # woken a little late every time: no drift accumulates
        at(monkeypatch, 100.0 + k * TICK + 0.003)
        nxt = run_clock_step(engine, nxt, 10)
    assert engine.ticks == 1000
    assert nxt == pytest.approx(100.0 + 1000 * TICK)
    assert engine.stats == {"late_ticks": 0, "skipped_ticks": 0}


def test_late_wake_up_catches_up(monkeypatch: pytest.MonkeyPatch) -> None:
    engine: Any = FakeEngine()
    at(monkeypatch, 100.0 + 4 * TICK + 0.001)  # four ticks missed
    nxt = run_clock_step(engine, 100.0, 10)
    assert engine.ticks == 5 and engine.stats["late_ticks"] == 4
    assert nxt == pytest.approx(100.0 + 5 * TICK)


def test_very_late_skips_beyond_the_catch_up_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    engine: Any = FakeEngine()
    at(monkeypatch, 101.0)  # a whole second late
    nxt = run_clock_step(engine, 100.0, 10)
    assert engine.ticks == 10
    assert engine.stats["skipped_ticks"] == 41
    assert 101.0 < nxt <= 101.0 + TICK
    assert (nxt - 100.0) / TICK == pytest.approx(round((nxt - 100.0) / TICK))  # on the grid


def test_early_wake_up_runs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    engine: Any = FakeEngine()
    at(monkeypatch, 99.999)
    assert run_clock_step(engine, 100.0, 10) == 100.0 and engine.ticks == 0
