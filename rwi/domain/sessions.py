"""The sessions feature: connections, their subscriptions, idempotent replies, and the
service's own life (contract §4 and the session commands of §5).

A session lives from ``session.opened`` to ``session.closed`` (or the next
``service.started``: connections never survive a restart). ``session.resume`` is decided
here (its starting point); the replay itself is I/O, done by the service once the
command is durable.
"""

from __future__ import annotations

from typing import Any

from rwi.domain.feature import Feature, Handler
from rwi.domain.model import (
    Command,
    Decision,
    Emit,
    EventLike,
    SessionState,
    State,
    StoredReply,
    session_stream,
)

# --- commands ------------------------------------------------------------------------


def _subscription(session: SessionState, contexts: set[str], queues: set[str]) -> dict[str, Any]:
    """The reply: the connection's subscriptions once the command is applied (``queues``
    only once it has some, so a contexts-only client sees the reply it always had)."""
    data: dict[str, Any] = {"contexts": sorted(contexts)}
    if queues or session.queues:
        data["queues"] = sorted(queues)
    return data


def _lists(command: Command) -> tuple[list[str], list[str]]:
    params = command.params
    return sorted(set(params.get("contexts") or ())), sorted(set(params.get("queues") or ()))


def _changed(command: Command, kind: str, contexts: list[str], queues: list[str]) -> Emit:
    data: dict[str, Any] = {"connection_id": command.connection_id, "contexts": contexts}
    if queues:
        data["queues"] = queues
    return Emit(session_stream(command.connection_id), kind, data)


def _subscribe(state: State, command: Command, ts: str) -> Decision:
    session = state.sessions[command.connection_id]
    contexts, queues = _lists(command)
    event = _changed(command, "session.subscribed", contexts, queues)
    reply = _subscription(session, session.contexts | set(contexts), session.queues | set(queues))
    return Decision((event,), reply)


def _unsubscribe(state: State, command: Command, ts: str) -> Decision:
    session = state.sessions[command.connection_id]
    contexts, queues = _lists(command)
    event = _changed(command, "session.unsubscribed", contexts, queues)
    reply = _subscription(session, session.contexts - set(contexts), session.queues - set(queues))
    return Decision((event,), reply)


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


HANDLERS: dict[str, Handler] = {
    "session.subscribe": _subscribe,
    "session.unsubscribe": _unsubscribe,
    "session.list_calls": _list_calls,
    "session.resume": _resume,
}

# --- folds ---------------------------------------------------------------------------


def _service_started(state: State, event: EventLike) -> None:
    state.instance = event.data["instance"]
    state.sessions.clear()


def _opened(state: State, event: EventLike) -> None:
    data = event.data
    state.sessions[data["connection_id"]] = SessionState(
        connection_id=data["connection_id"], token=data["token"]
    )


def _closed(state: State, event: EventLike) -> None:
    state.sessions.pop(event.data["connection_id"], None)


def _subscribed(state: State, event: EventLike) -> None:
    session = state.sessions.get(event.data["connection_id"])
    if session is not None:
        session.contexts.update(event.data["contexts"])
        session.queues.update(event.data.get("queues", ()))


def _unsubscribed(state: State, event: EventLike) -> None:
    session = state.sessions.get(event.data["connection_id"])
    if session is not None:
        session.contexts.difference_update(event.data["contexts"])
        session.queues.difference_update(event.data.get("queues", ()))


def _command(state: State, event: EventLike) -> None:
    data = event.data
    key = data.get("idempotency_key")
    # The first execution under a key is the one retries get back; later records under
    # it (retries, conflicts) never replace it.
    if key is not None and (data["token"], key) not in state.idempotency:
        state.idempotency[(data["token"], key)] = StoredReply(
            params_hash=data["params_hash"],
            outcome=data["outcome"],
            ts=event.meta.get("ts", ""),
        )


FEATURE = Feature(
    name="sessions",
    commands=HANDLERS,
    evolvers={
        "service.started": _service_started,
        "session.opened": _opened,
        "session.closed": _closed,
        "session.subscribed": _subscribed,
        "session.unsubscribed": _unsubscribed,
        "rwi.command": _command,
    },
)
