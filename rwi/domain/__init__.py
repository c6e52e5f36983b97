"""The pure core: ``decide(state, command, now) -> events`` and ``evolve(state, event)``.

No I/O here. Time and ids come in as arguments, so replaying the log through ``evolve``
rebuilds exactly the live state, and a test proves it.
"""

from rwi.domain.decide import decide, observe
from rwi.domain.evolve import evolve
from rwi.domain.model import Command, Decision, Emit, Observation, State

__all__ = ["Command", "Decision", "Emit", "Observation", "State", "decide", "evolve", "observe"]
