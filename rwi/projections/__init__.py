"""Projections: SQL tables folded from the event log, for reporting and replay tooling.

Where this sits in the loop: the log (``rwi.store``) is read by two folds, the live
state (``rwi.domain.evolve``) and these projections; neither writes events. Each
projection keeps a checkpoint (``projection_checkpoints``) moved in the same
transaction as its rows; ``runner.ProjectionRunner`` follows the log while the service
runs, ``engine.rebuild`` (``rwi rebuild``) folds it again from zero, ``verify``
(``rwi verify``) proves both give the same tables.

- ``calls``: ``calls``, ``call_segments``, ``recordings``, ``queue_entries``
  (``calls.CallsProjection``, the pure fold in ``fold``).
- ``rwi_commands``: one row per RWI command (``commands.CommandsProjection``).
- ``agent_states``: one row per interval an agent spent in one state
  (``agent_states.AgentStatesProjection``).
"""

from __future__ import annotations

from rwi.projections.agent_states import AgentStatesProjection
from rwi.projections.calls import CallsProjection
from rwi.projections.commands import CommandsProjection
from rwi.projections.engine import Projection

#: Every projection, by name, in the order they are caught up.
PROJECTIONS: dict[str, Projection] = {
    "calls": CallsProjection(),
    "rwi_commands": CommandsProjection(),
    "agent_states": AgentStatesProjection(),
}

__all__ = [
    "PROJECTIONS",
    "AgentStatesProjection",
    "CallsProjection",
    "CommandsProjection",
    "Projection",
]
