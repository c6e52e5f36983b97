"""Who receives call events (contract §4): the owner of a call and the connections
attached to it; the subscribers of its context for ``call.incoming`` and, for an inbound
call, its answer and hangup (``LOSER_EVENTS``).

``audience`` serves live pushes and ``CallResume`` serves ``session.resume``, so both
deliver the same events. Transfers' events are call events and use the same rules.
"""

from __future__ import annotations

from rwi.domain.call import CallState
from rwi.domain.model import EventLike, State

#: What a subscriber that did not win the claim still gets.
LOSER_EVENTS = frozenset({"call.answered", "call.hangup"})


def subscribers(state: State, context: str | None) -> set[str]:
    if context is None:
        return set()
    return {cid for cid, s in state.sessions.items() if context in s.contexts}


def _for_call(state: State, event_type: str, call: CallState) -> set[str]:
    out: set[str] = set(call.attached)
    if call.owner is not None:
        out.add(call.owner)
    if call.direction == "inbound" and event_type in LOSER_EVENTS:
        out |= subscribers(state, call.context)
    return out


def audience(state: State, event: EventLike) -> set[str]:
    """Connections entitled to a call event, from the state just before it."""
    if event.type == "call.incoming":
        return subscribers(state, event.data.get("context"))
    out: set[str] = set()
    for key in ("call_id", "leg_a", "leg_b"):
        call_id = event.data.get(key)
        call = state.calls.get(call_id) if isinstance(call_id, str) else None
        if call is not None:
            out |= _for_call(state, event.type, call)
    return out


class CallResume:
    """Which logged call events a resuming connection is entitled to.

    The connection's calls (owned or attached now, or ended while a connection of its
    token was away) and its subscribed contexts decide:
    a subscriber gets ``call.incoming`` of its contexts and, for those calls, the
    answered/hangup events; an owner or attached supervisor gets everything of the call.
    """

    def __init__(self, state: State, connection_id: str) -> None:
        session = state.sessions.get(connection_id)
        self.contexts = set(session.contexts) if session is not None else set()
        self.mine = {
            cid
            for cid, call in state.calls.items()
            if call.owner == connection_id or connection_id in call.attached
        }
        # calls that ended while a connection of this token was away (rwi.domain.away)
        if session is not None:
            self.mine |= set(state.missed.get(session.token, ()))
        self.context_of = {cid: call.context for cid, call in state.calls.items()}

    def __call__(self, event: EventLike) -> bool:
        call_id = event.data.get("call_id")
        if not isinstance(call_id, str):
            return False
        if event.type == "call.incoming":
            self.context_of[call_id] = event.data.get("context")
            return event.data.get("context") in self.contexts or call_id in self.mine
        if call_id in self.mine or event.data.get("leg_b") in self.mine:
            return True
        context = self.context_of.get(call_id)
        return event.type in LOSER_EVENTS and context is not None and context in self.contexts
