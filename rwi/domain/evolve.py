"""``evolve``: the one fold from events to live state, used live and on every replay.

Each event type is folded by the evolvers the features declare for it, in registry
order (``rwi.domain.features``).
"""

from __future__ import annotations

from rwi.domain.features import EVOLVERS
from rwi.domain.model import EventLike, State


def evolve(state: State, event: EventLike) -> State:
    """Apply one event. Unknown types are ignored so old code can read newer logs."""
    for evolver in EVOLVERS.get(event.type, ()):
        evolver(state, event)
    return state
