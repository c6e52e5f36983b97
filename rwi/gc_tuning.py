"""The garbage collector's settings for ``rwi serve``, applied once start-up is done.

Where it sits: called by ``rwi.cli``'s server right after the app's start-up (the log
folded, SIP and media listening), never by the domain. Every part of the service shares
one event loop, and a full (generation 2) collection walks every tracked object while
holding it. What start-up imported and built (SQLAlchemy, Alembic, numpy, the folded
state) is most of those objects and lives as long as the process: frozen, it is left
out of every collection, and the collections that stalled the loop get shorter.

Measured with ``scripts/bench_calls.py --mode inbound --rates 150`` (15 s; the service's
``rwi_event_loop_lag_seconds``, probed every 50 ms): probe samples over 50 ms late, 8 to
10 by default, 3 to 4 frozen. Raising the thresholds as well, (5000, 10, 10) or (50000,
20, 100), brought that to 0 or 1, but then ``scripts/soak.py`` (50 calls/s) found the
memory still growing after 4 minutes (+16 to 17 %) where it levels off within 2 minutes
otherwise, so the thresholds stay CPython's.
"""

from __future__ import annotations

import gc


def tune() -> None:
    gc.collect()  # start-up's own garbage goes now, not into the frozen generation
    gc.freeze()
