"""What one domain feature declares; ``rwi.domain.features`` composes them.

A feature (sessions, calls, transfers; recordings, queues, conferences... next) is one
module that says, for its aggregate(s):

- ``commands``: RWI action -> handler (``decide``);
- ``observations``: observation type -> rule (what an outside happening means);
- ``timers``: stream kind (``call``, ``queue``...) -> rule for its ``timer.fired``;
- ``evolvers``: event type -> fold into the state (several features may fold one type);
- ``plans``: event type -> the effects it makes happen on SIP and media;
- ``reactions``: what other features' events mean for it (run after every decision and
  observation, on the state before those events);
- ``pushed``: the event types clients receive; ``audience``: who receives one of them,
  from the state before it; ``resume``: which logged ones a resuming connection gets;
- ``restart``: what a service restart means for its aggregates (events logged at start);
- ``shutdown``: what a clean stop means for them (events logged by the stopping process
  while its SIP and media sides still run, so their last reports are logged too).

Everything here is pure: time comes in as the decision's ISO timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from rwi.domain.effects import Effect
from rwi.domain.model import Command, Decision, Emit, EventLike, Observation, State

Handler = Callable[[State, Command, str], Decision]
Rule = Callable[[State, Observation, str], tuple[Emit, ...]]
Evolver = Callable[[State, EventLike], None]
Planner = Callable[[State, EventLike], list[Effect]]
Reaction = Callable[[State, Sequence[Emit], str], list[Emit]]
Audience = Callable[[State, EventLike], set[str]]
#: a connection's resume rule: is a logged event one it is entitled to?
ResumeRule = Callable[[EventLike], bool]
ResumeFactory = Callable[[State, str], ResumeRule]
Restart = Callable[[State, str], list[Emit]]


def unchanged(state: State, event: EventLike) -> None:
    """The evolver of an event that changes no state (a DTMF digit, a busy signal)."""


@dataclass(frozen=True)
class Feature:
    name: str
    commands: Mapping[str, Handler] = field(default_factory=dict)
    #: the commands act on SIP and media: offered only when a SIP/media side runs
    needs_media: bool = False
    observations: Mapping[str, Rule] = field(default_factory=dict)
    timers: Mapping[str, Rule] = field(default_factory=dict)
    evolvers: Mapping[str, Evolver] = field(default_factory=dict)
    plans: Mapping[str, Planner] = field(default_factory=dict)
    reactions: tuple[Reaction, ...] = ()
    pushed: frozenset[str] = frozenset()
    audience: Audience | None = None
    resume: ResumeFactory | None = None
    restart: Restart | None = None
    shutdown: Restart | None = None
