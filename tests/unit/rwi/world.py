"""A pure call-domain world for unit tests: a state, a clock and the log of all decided.

``World`` drives ``rwi.domain`` (``decide``/``observe``/``evolve``) with commands and
SIP observations as the service would, with no I/O; ``replayed()`` folds its log again
for the determinism check.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rwi.domain import Command, Observation, State, decide, evolve, observe
from rwi.domain.decide import iso
from rwi.domain.model import Emit, Policy
from rwi.errors import RwiError

T0 = datetime(2026, 3, 14, 9, 0, 0, tzinfo=UTC)
SCOPES = frozenset({"call.control"})


class World:
    """A state plus the log of everything decided on it (for the replay check)."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.state = State(policy=policy or Policy())
        self.log: list[Emit] = []
        self.now = T0
        self.n = 0

    def apply(self, events: tuple[Emit, ...] | list[Emit]) -> list[Emit]:
        stamped = []
        for event in events:
            event = Emit(event.stream_id, event.type, event.data, {"ts": iso(self.now)})
            evolve(self.state, event)
            self.log.append(event)
            stamped.append(event)
        return stamped

    def open(self, cid: str, *contexts: str, scopes: frozenset[str] = SCOPES) -> None:
        self.apply([Emit(f"session:{cid}", "session.opened", {"connection_id": cid, "token": cid})])
        if contexts:
            self.do(cid, "session.subscribe", contexts=list(contexts))

    def do(self, cid: str, action: str, scopes: frozenset[str] = SCOPES, **params: Any) -> Any:
        self.n += 1
        command = Command(action, f"a{self.n}", params, cid, cid, scopes, nonce=f"n{self.n}")
        decision = decide(self.state, command, self.now)
        self.apply(decision.events)
        return decision.data

    def fail(self, cid: str, action: str, **params: Any) -> tuple[str, str]:
        with pytest.raises(RwiError) as info:
            self.do(cid, action, **params)
        return info.value.code, info.value.message

    def see(self, observation: str, /, **data: Any) -> list[str]:
        events = observe(self.state, Observation(observation, data), self.now)
        return [e.type for e in self.apply(events)]

    def later(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def replayed(self) -> dict[str, Any]:
        fresh = State(policy=self.state.policy)
        for event in self.log:
            evolve(fresh, event)
        return fresh.snapshot()


def outbound_answered(w: World, cid: str, call_id: str) -> None:
    w.do(cid, "call.originate", call_id=call_id, destination=f"sip:{call_id}@local")
    w.see("sip.call.progress", call_id=call_id, status=180)
    w.see("sip.call.answered", call_id=call_id)


def bridged_pair(w: World) -> None:
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    outbound_answered(w, "app", "leg_b")
    w.do("app", "call.bridge", leg_a="leg_a", leg_b="leg_b")


def last(w: World, event_type: str) -> dict[str, Any]:
    return next(e.data for e in reversed(w.log) if e.type == event_type)
