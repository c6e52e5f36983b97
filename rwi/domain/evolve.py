"""``evolve``: the one fold from events to live state, used live and on every replay."""

from __future__ import annotations

from typing import Any

from rwi.domain.call import CallState, CallStatus
from rwi.domain.model import EventLike, SessionState, State, StoredReply

#: Observations that carry a call's dialog record (``data["dialog"]``).
_DIALOG_REPORTS = frozenset({"sip.call.offered", "sip.call.progress", "sip.call.answered"})


def evolve(state: State, event: EventLike) -> State:
    """Apply one event. Unknown types are ignored so old code can read newer logs."""
    data = event.data
    ts = event.meta.get("ts", "")
    match event.type:
        case "service.started":
            # Connections never survive a restart: their sessions are gone, their calls
            # lose their owner.
            state.instance = data["instance"]
            state.sessions.clear()
            for call in state.calls.values():
                if call.owner is not None:
                    call.orphaned_at = ts
                call.owner = None
                call.attached.clear()
            state.owned.clear()
        case "session.opened":
            state.sessions[data["connection_id"]] = SessionState(
                connection_id=data["connection_id"], token=data["token"]
            )
        case "session.closed":
            connection_id = data["connection_id"]
            state.sessions.pop(connection_id, None)
            for call in state.calls.values():
                if call.owner == connection_id:
                    state.set_owner(call, None)
                    call.orphaned_at = ts
                call.attached.pop(connection_id, None)
        case "session.subscribed":
            session = state.sessions.get(data["connection_id"])
            if session is not None:
                session.contexts.update(data["contexts"])
        case "session.unsubscribed":
            session = state.sessions.get(data["connection_id"])
            if session is not None:
                session.contexts.difference_update(data["contexts"])
        case "observation" if data.get("dialog") and data.get("type") in _DIALOG_REPORTS:
            # The SIP side's latest record of the call's dialog; kept until the call ends
            # so that a restart after a crash can still end it (BYE, CANCEL or a final
            # response). It may arrive before the call exists (an offered INVITE).
            state.dialogs[data["call_id"]] = data["dialog"]
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
                state=CallStatus.OFFERED,
                caller=data.get("caller", ""),
                callee=data.get("callee", ""),
                context=data.get("context"),
                created_at=ts,
                instance=state.instance,
            )
        case "sip.registration.changed":
            if data["bindings"]:
                state.registrations[data["aor"]] = data["bindings"]
            else:
                state.registrations.pop(data["aor"], None)
        case "call.originated":
            call = state.calls[data["call_id"]] = CallState(
                call_id=data["call_id"],
                direction="outbound",
                state=CallStatus.DIALING,
                caller=data.get("caller_id") or "",
                callee=data["destination"],
                context=data.get("context"),
                created_at=ts,
                destination=data["destination"],
                ringback=data.get("ringback", "local"),
                ringback_target=data.get("ringback_target"),
                hold_target=data.get("hold_music_target"),
                b2bua_peer=data.get("b2bua_peer"),
                transfer_of=data.get("transfer_of"),
                instance=state.instance,
            )
            state.set_owner(call, data["owner"])
            if data.get("b2bua_peer") in state.calls:
                state.calls[data["b2bua_peer"]].b2bua_peer = data["call_id"]
            transferred = state.calls.get(data.get("transfer_of") or "")
            if transferred is not None:
                transferred.transfer_kind = data.get("transfer_kind")
                transferred.transfer_leg = data["call_id"]
                transferred.transfer_peer = data.get("transfer_peer")
        case "call.claimed":
            state.set_owner(_call(state, data), data["connection_id"])
        case "call.ringing":
            call = _call(state, data)
            call.transition(CallStatus.RINGING if call.direction == "inbound" else CallStatus.EARLY)
        case "call.early_media":
            call = _call(state, data)
            call.transition(CallStatus.EARLY)
            call.early_media = True
        case "call.answered":
            call = _call(state, data)
            call.transition(CallStatus.ANSWERED)
            call.answered_at = ts
        case "call.bridged":
            a, b = state.calls[data["leg_a"]], state.calls[data["leg_b"]]
            a.transition(CallStatus.BRIDGED)
            b.transition(CallStatus.BRIDGED)
            a.bridged_with, b.bridged_with = b.call_id, a.call_id
            a.playback_id = b.playback_id = None
            _stop_passthrough(state, a)
            _stop_passthrough(state, b)
        case "call.unbridged":
            for leg in (data.get("leg_a"), data.get("leg_b")):
                unbridged = state.calls.get(leg) if leg else None
                if unbridged is not None:
                    unbridged.bridged_with = None
                    if unbridged.state is CallStatus.BRIDGED:
                        unbridged.transition(CallStatus.ANSWERED)
                    elif unbridged.held_from is CallStatus.BRIDGED:
                        unbridged.held_from = CallStatus.ANSWERED
        case "call.hangup":
            gone = state.calls.pop(data["call_id"], None)
            state.dialogs.pop(data["call_id"], None)
            if gone is not None:
                state.set_owner(gone, None)
            peer = state.calls.get(gone.bridged_with) if gone and gone.bridged_with else None
            if peer is not None and peer.bridged_with == data["call_id"]:
                peer.bridged_with = None
                if peer.state is CallStatus.BRIDGED:
                    peer.transition(CallStatus.ANSWERED)
        case "media.hold.started":
            call = _call(state, data)
            call.held_from = call.state
            call.transition(CallStatus.HELD)
            call.playback_id = None
        case "media.hold.stopped":
            call = _call(state, data)
            call.transition(call.held_from or CallStatus.ANSWERED)
            call.held_from = None
        case "media.play.started":
            _call(state, data).playback_id = data["playback_id"]
        case "media.play.finished":
            playing = state.calls.get(data["call_id"])
            if playing is not None and playing.playback_id == data["playback_id"]:
                playing.playback_id = None
        case "media.ringback.passthrough.started":
            call = _call(state, data)
            _stop_passthrough(state, call)
            call.passthrough_from = data["source_call_id"]
            source = state.calls.get(data["source_call_id"])
            if source is not None:
                source.passthrough_to.add(call.call_id)
        case "media.ringback.passthrough.stopped":
            stopped = state.calls.get(data["call_id"])
            if stopped is not None:
                _stop_passthrough(state, stopped)
        case "call.transferred":
            if data.get("method") == "refer":
                _call(state, data).transfer_kind = "refer"
        case "call.transfer.accepted":
            accepted = _call(state, data)
            if accepted.transfer_kind == "refer":
                accepted.transfer_kind = "referred"
        case "call.transfer.ended":
            ended = state.calls.get(data["call_id"])
            if ended is not None:
                ended.transfer_kind = ended.transfer_leg = ended.transfer_peer = None
            new_leg = state.calls.get(data.get("transfer_call_id") or "")
            if new_leg is not None:
                new_leg.transfer_of = None
        case "call.attached":
            call = _call(state, data)
            if data["mode"] == "control":
                state.set_owner(call, data["connection_id"])
                call.orphaned_at = None
                call.attached.pop(data["connection_id"], None)
            else:
                call.attached[data["connection_id"]] = data["mode"]
        case "call.detached":
            call = _call(state, data)
            if call.owner == data["connection_id"]:
                state.set_owner(call, None)
                call.orphaned_at = ts
            call.attached.pop(data["connection_id"], None)
        case _:
            pass
    return state


def _call(state: State, data: dict[str, Any]) -> CallState:
    return state.calls[data["call_id"]]


def _stop_passthrough(state: State, call: CallState) -> None:
    if call.passthrough_from is None:
        return
    source = state.calls.get(call.passthrough_from)
    if source is not None:
        source.passthrough_to.discard(call.call_id)
    call.passthrough_from = None
