"""``plan``: the effects a durable event makes happen on SIP and media (pure), from the
planners the features declare for its type (``rwi.domain.features``)."""

from __future__ import annotations

from rwi.domain.effects import Effect
from rwi.domain.features import PLANNERS
from rwi.domain.model import EventLike, State


def plan(state: State, event: EventLike) -> list[Effect]:
    """The effects ``event`` requires, given the state just before it."""
    effects: list[Effect] = []
    for planner in PLANNERS.get(event.type, ()):
        effects += planner(state, event)
    return effects
