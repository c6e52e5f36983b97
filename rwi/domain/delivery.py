"""Who receives which event (contract §4), as a pure function of the state.

Used for live pushes and for ``session.resume``, so both deliver the same events.
"""

from __future__ import annotations

from rwi.domain.model import CallState, EventLike, State

#: Event types that are RWI events pushed to clients; the rest of the log is internal.
PUSHED_PREFIXES = (
    "call.",
    "media.",
    "record.",
    "queue.",
    "supervisor.",
    "sip.message.received",
    "sip.notify.received",
    "conference.",
)
#: What a subscriber that did not win the claim still gets (contract §4).
LOSER_EVENTS = frozenset({"call.answered", "call.hangup"})


def is_pushed(event_type: str) -> bool:
    return event_type.startswith(PUSHED_PREFIXES)


def _subscribers(state: State, context: str | None) -> set[str]:
    if context is None:
        return set()
    return {cid for cid, s in state.sessions.items() if context in s.contexts}


def recipients(state: State, event: EventLike, call: CallState | None) -> set[str]:
    """Connections entitled to ``event``; ``call`` is the call it concerns, as it was
    before the event (a hangup removes the call from the state)."""
    if not is_pushed(event.type):
        return set()
    if event.type == "call.incoming":
        return _subscribers(state, event.data.get("context"))
    if call is None:
        return set()
    out: set[str] = set(call.attached)
    if call.owner is not None:
        out.add(call.owner)
        if event.type in LOSER_EVENTS and call.direction == "inbound":
            out |= _subscribers(state, call.context)
    elif call.direction == "inbound" and event.type in LOSER_EVENTS:
        out |= _subscribers(state, call.context)
    return out


def entitled(state: State, connection_id: str, event: EventLike, call: CallState | None) -> bool:
    return connection_id in recipients(state, event, call)


class ResumeFilter:
    """Which logged events a resuming connection is entitled to (contract §4).

    The connection's calls (owned or attached now) and its subscribed contexts decide:
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
        self.context_of = {cid: call.context for cid, call in state.calls.items()}

    def __call__(self, event: EventLike) -> bool:
        if not is_pushed(event.type):
            return False
        call_id = event.data.get("call_id")
        if not isinstance(call_id, str):
            return False
        if event.type == "call.incoming":
            self.context_of[call_id] = event.data.get("context")
            return event.data.get("context") in self.contexts or call_id in self.mine
        if call_id in self.mine:
            return True
        context = self.context_of.get(call_id)
        return event.type in LOSER_EVENTS and context is not None and context in self.contexts
