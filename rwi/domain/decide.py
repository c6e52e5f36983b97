"""``decide``: a command or an observation, against the state, becomes events (pure).

Rejections raise ``RwiError``; the caller records them in the log like any outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rwi.domain import calls, transfers
from rwi.domain.model import (
    Command,
    Decision,
    Emit,
    Observation,
    State,
    session_stream,
)
from rwi.domain.observations import RULES
from rwi.errors import RwiError

Handler = Callable[[State, Command, str], Decision]


def _subscribe(state: State, command: Command, ts: str) -> Decision:
    session = state.sessions[command.connection_id]
    contexts = sorted(set(command.params["contexts"]))
    event = Emit(
        session_stream(command.connection_id),
        "session.subscribed",
        {"connection_id": command.connection_id, "contexts": contexts},
    )
    return Decision((event,), {"contexts": sorted(session.contexts | set(contexts))})


def _unsubscribe(state: State, command: Command, ts: str) -> Decision:
    session = state.sessions[command.connection_id]
    contexts = sorted(set(command.params["contexts"]))
    event = Emit(
        session_stream(command.connection_id),
        "session.unsubscribed",
        {"connection_id": command.connection_id, "contexts": contexts},
    )
    return Decision((event,), {"contexts": sorted(session.contexts - set(contexts))})


def _list_calls(state: State, command: Command, ts: str) -> Decision:
    mine = [
        call.summary()
        for call in state.calls.values()
        if call.owner == command.connection_id or command.connection_id in call.attached
    ]
    mine.sort(key=lambda c: (c["created_at"], c["call_id"]))
    return Decision((), {"calls": mine})


def _resume(state: State, command: Command, ts: str) -> Decision:
    # The replay itself is I/O (reading the log) and is done by the service after the
    # command is durable; deciding only fixes the starting point.
    return Decision((), {"since_seq": command.params.get("since_seq", 0)})


SESSION_HANDLERS: dict[str, Handler] = {
    "session.subscribe": _subscribe,
    "session.unsubscribe": _unsubscribe,
    "session.list_calls": _list_calls,
    "session.resume": _resume,
}
HANDLERS: dict[str, Handler] = {**SESSION_HANDLERS, **calls.HANDLERS, **transfers.HANDLERS}

#: Actions this build executes over RWI; the rest of the contract answers
#: ``unknown_action``. Call commands join once their effects reach SIP and media.
BUILT = frozenset(SESSION_HANDLERS)


def decide(state: State, command: Command, now: datetime) -> Decision:
    if command.connection_id not in state.sessions:
        raise RwiError("internal_error", f"connection {command.connection_id} has no session")
    handler = HANDLERS.get(command.action)
    if handler is None:
        raise RwiError("unknown_action", f"action {command.action!r} is not available")
    ts = iso(now)
    decision = handler(state, command, ts)
    after = transfers.aftermath(state, decision.events, ts)
    return Decision(decision.events + tuple(after), decision.data) if after else decision


def observe(state: State, observation: Observation, now: datetime) -> tuple[Emit, ...]:
    """Decide what an outside happening means for the calls."""
    rule = RULES.get(observation.type)
    if rule is None:
        return ()
    ts = iso(now)
    events = rule(state, observation, ts)
    return events + tuple(transfers.aftermath(state, events, ts))


def iso(now: datetime) -> str:
    """The wire's timestamp form: UTC, milliseconds, ``Z``."""
    # isoformat is several times faster than strftime; [:23] drops any UTC offset.
    return now.isoformat(timespec="milliseconds")[:23] + "Z"
