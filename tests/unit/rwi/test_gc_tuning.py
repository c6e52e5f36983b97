"""``rwi serve``'s collector settings (``rwi.gc_tuning``)."""

from __future__ import annotations

import gc

from rwi import gc_tuning


def test_tune_freezes_what_start_up_built_and_keeps_collecting_cycles() -> None:
    before = gc.get_threshold()
    try:
        gc_tuning.tune()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == before
        # cycles made after start-up are still collected
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
