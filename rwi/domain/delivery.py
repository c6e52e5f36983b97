"""Who receives which event (contract §4), as a pure function of the state.

Delivery is by aggregate: the feature that pushes an event type says who is entitled
to it (``Feature.audience``: the owner of a call, the subscribers of a context or a
queue...) and which logged events a resuming connection gets (``Feature.resume``).
Used for live pushes and for ``session.resume``, so both deliver the same events.
"""

from __future__ import annotations

from rwi.domain.feature import Audience, ResumeFactory, ResumeRule
from rwi.domain.features import FEATURES, PUSHED
from rwi.domain.model import EventLike, State

#: event type -> who receives it / the resume rule of the feature that pushes it
_AUDIENCE: dict[str, Audience] = {
    t: f.audience for f in FEATURES if f.audience is not None for t in f.pushed
}
_RESUME: dict[str, ResumeFactory] = {
    t: f.resume for f in FEATURES if f.resume is not None for t in f.pushed
}


def is_pushed(event_type: str) -> bool:
    return event_type in PUSHED


def recipients(state: State, event: EventLike) -> set[str]:
    """Connections entitled to ``event``, from the state just before it is applied."""
    audience = _AUDIENCE.get(event.type)
    return audience(state, event) if audience is not None else set()


class ResumeFilter:
    """Which logged events a resuming connection is entitled to: each pushed event is
    judged by its feature's resume rule, built once from the state at resume time (one
    rule per distinct factory, so features sharing one share its memory)."""

    def __init__(self, state: State, connection_id: str) -> None:
        built: dict[ResumeFactory, ResumeRule] = {}
        self._rules: dict[str, ResumeRule] = {}
        for event_type, factory in _RESUME.items():
            if factory not in built:
                built[factory] = factory(state, connection_id)
            self._rules[event_type] = built[factory]

    def __call__(self, event: EventLike) -> bool:
        rule = self._rules.get(event.type)
        return rule is not None and rule(event)
