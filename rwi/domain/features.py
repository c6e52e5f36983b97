"""The registry: every domain feature, and what the protocol has that none builds yet.

``decide``, ``observe``, ``evolve``, ``plan`` and delivery read the tables composed here
from ``FEATURES``; a new feature is one module declaring a ``Feature``, added to the
list. A unit test checks that every action of ``rwi.protocol.SPECS`` is handled by a
feature or listed in ``PENDING_ACTIONS``, and that every pushed event type has an
evolver.
"""

from __future__ import annotations

from typing import TypeVar

from rwi.domain import (
    agents,
    away,
    calls,
    conferences,
    queues,
    recordings,
    registrations,
    sessions,
    sip_requests,
    streams,
    supervision,
    transfers,
)
from rwi.domain.feature import Audience, Evolver, Feature, Handler, Planner, Reaction, Rule

V = TypeVar("V")

FEATURES: tuple[Feature, ...] = (
    away.FEATURE,  # first: it sees sessions and calls before they are dropped
    sessions.FEATURE,
    registrations.FEATURE,
    calls.FEATURE,
    transfers.FEATURE,
    recordings.FEATURE,
    supervision.FEATURE,
    agents.FEATURE,
    queues.FEATURE,
    sip_requests.FEATURE,
    conferences.FEATURE,
    streams.FEATURE,
)

#: Protocol actions no feature handles yet: they answer ``unknown_action``.
PENDING_ACTIONS: tuple[str, ...] = ()
#: Event types of the contract that pending features will push (delivered like the
#: others once something emits them).
PENDING_EVENTS: frozenset[str] = frozenset()


def is_pending(action: str) -> bool:
    return action.startswith(PENDING_ACTIONS)


def _unique(kind: str, tables: list[tuple[str, dict[str, V]]]) -> dict[str, V]:
    """One owner per key: two features handling one command (or rule) is a bug."""
    out: dict[str, V] = {}
    owner: dict[str, str] = {}
    for name, table in tables:
        for key, value in table.items():
            if key in out:
                raise ValueError(f"{kind} {key!r} is declared by {owner[key]} and {name}")
            out[key], owner[key] = value, name
    return out


def _all(tables: list[dict[str, V]]) -> dict[str, tuple[V, ...]]:
    """Every feature's entry per key, in registry order."""
    out: dict[str, tuple[V, ...]] = {}
    for table in tables:
        for key, value in table.items():
            out[key] = (*out.get(key, ()), value)
    return out


HANDLERS: dict[str, Handler] = _unique("command", [(f.name, dict(f.commands)) for f in FEATURES])
RULES: dict[str, Rule] = _unique(
    "observation rule", [(f.name, dict(f.observations)) for f in FEATURES]
)
TIMERS: dict[str, Rule] = _unique("timer stream", [(f.name, dict(f.timers)) for f in FEATURES])
EVOLVERS: dict[str, tuple[Evolver, ...]] = _all([dict(f.evolvers) for f in FEATURES])
PLANNERS: dict[str, tuple[Planner, ...]] = _all([dict(f.plans) for f in FEATURES])
REACTIONS: tuple[Reaction, ...] = tuple(r for f in FEATURES for r in f.reactions)
PUSHED = frozenset().union(*(f.pushed for f in FEATURES)) | PENDING_EVENTS
AUDIENCES: tuple[Audience, ...] = tuple(f.audience for f in FEATURES if f.audience)


def available(media: bool) -> frozenset[str]:
    """The actions this build executes over RWI: those of features that need a SIP/media
    side only when one runs; the rest of the contract answers ``unknown_action``."""
    return frozenset(
        action for f in FEATURES if media or not f.needs_media for action in f.commands
    )
