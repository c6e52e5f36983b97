"""``evolve``: the one fold from events to live state, used live and on every replay."""

from __future__ import annotations

from rwi.domain.model import CallState, EventLike, SessionState, State, StoredReply


def evolve(state: State, event: EventLike) -> State:
    """Apply one event. Unknown types are ignored so old code can read newer logs."""
    data = event.data
    match event.type:
        case "service.started":
            # Connections never survive a restart: their sessions are gone, their calls
            # lose their owner.
            state.instance = data["instance"]
            state.sessions.clear()
            for call in state.calls.values():
                call.owner = None
                call.attached.clear()
        case "session.opened":
            state.sessions[data["connection_id"]] = SessionState(
                connection_id=data["connection_id"], token=data["token"]
            )
        case "session.closed":
            connection_id = data["connection_id"]
            state.sessions.pop(connection_id, None)
            for call in state.calls.values():
                if call.owner == connection_id:
                    call.owner = None
                call.attached.pop(connection_id, None)
        case "session.subscribed":
            session = state.sessions.get(data["connection_id"])
            if session is not None:
                session.contexts.update(data["contexts"])
        case "session.unsubscribed":
            session = state.sessions.get(data["connection_id"])
            if session is not None:
                session.contexts.difference_update(data["contexts"])
        case "rwi.command":
            key = data.get("idempotency_key")
            # The first execution under a key is the one retries get back; later records
            # under it (retries, conflicts) never replace it.
            if key is not None and (data["token"], key) not in state.idempotency:
                state.idempotency[(data["token"], key)] = StoredReply(
                    params_hash=data["params_hash"],
                    outcome=data["outcome"],
                    ts=event.meta.get("ts", ""),
                )
        case "call.incoming":
            state.calls[data["call_id"]] = CallState(
                call_id=data["call_id"],
                direction="inbound",
                state="offered",
                caller=data.get("caller", ""),
                callee=data.get("callee", ""),
                context=data.get("context"),
                created_at=event.meta.get("ts", ""),
            )
        case "call.hangup":
            state.calls.pop(data["call_id"], None)
        case _:
            pass
    return state
