"""The garbage collector's settings for ``rwi serve``, applied once start-up is done.

Where it sits: called by ``rwi.cli``'s server right after the app's start-up (the log
folded, SIP and media listening), never by the domain. Every part of the service shares
one event loop, and CPython's full (generation 2) collection walks every tracked object
while holding it: with the default thresholds (700, 10, 10) that happened every few
seconds under load and stalled the loop 50 to 250 ms, which showed as call set-up p99
(``scripts/bench_calls.py`` at 150 calls/s: ``rwi_event_loop_lag_seconds`` had 8 to 10
samples over 50 ms late in 15 s; set-up p99 155 to 293 ms). Freezing what start-up built
(modules, the folded state: long-lived, never garbage) takes it out of every collection,
and larger thresholds make the young collections rarer and the full ones much rarer:
0 or 1 sample over 50 ms, set-up p99 81 to 108 ms, 5 to 10 % less CPU per call.
Reference counting still frees everything acyclic at once; cycles are still collected.
"""

from __future__ import annotations

import gc

#: (generation 0 allocations, generation 1 and 2 collection ratios)
THRESHOLDS = (50_000, 20, 100)


def tune() -> None:
    gc.collect()  # start-up's own garbage goes now, not into the frozen generation
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
