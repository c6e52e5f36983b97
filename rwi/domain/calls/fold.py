"""How call events change the calls (``Feature.evolvers`` of the calls feature).

Each function folds one event type into ``State.calls``; ``rwi.domain.evolve`` runs
them live and on every replay. Calls move between states only through
``CallState.transition``.
"""

from __future__ import annotations

from typing import Any

from rwi.domain.call import CallState, CallStatus
from rwi.domain.feature import Evolver, unchanged
from rwi.domain.model import EventLike, State

#: Observations that carry a call's dialog record (``data["dialog"]``).
_DIALOG_REPORTS = frozenset({"sip.call.offered", "sip.call.progress", "sip.call.answered"})


def _call(state: State, data: dict[str, Any]) -> CallState:
    return state.calls[data["call_id"]]


def _stop_passthrough(state: State, call: CallState) -> None:
    if call.passthrough_from is None:
        return
    source = state.calls.get(call.passthrough_from)
    if source is not None:
        source.passthrough_to.discard(call.call_id)
    call.passthrough_from = None


def service_started(state: State, event: EventLike) -> None:
    # Connections never survive a restart: the calls lose their owner.
    ts = event.meta.get("ts", "")
    for call in state.calls.values():
        if call.owner is not None:
            call.orphaned_at = ts
        call.owner = None
        call.attached.clear()
    state.owned.clear()


def session_closed(state: State, event: EventLike) -> None:
    connection_id = event.data["connection_id"]
    ts = event.meta.get("ts", "")
    for call in state.calls.values():
        if call.owner == connection_id:
            state.set_owner(call, None)
            call.orphaned_at = ts
        call.attached.pop(connection_id, None)


def observation(state: State, event: EventLike) -> None:
    # The SIP side's latest record of the call's dialog; kept until the call ends so
    # that a restart after a crash can still end it (BYE, CANCEL or a final response).
    # It may arrive before the call exists (an offered INVITE).
    data = event.data
    if data.get("dialog") and data.get("type") in _DIALOG_REPORTS:
        state.dialogs[data["call_id"]] = data["dialog"]


def incoming(state: State, event: EventLike) -> None:
    data = event.data
    state.calls[data["call_id"]] = CallState(
        call_id=data["call_id"],
        direction="inbound",
        state=CallStatus.OFFERED,
        caller=data.get("caller", ""),
        callee=data.get("callee", ""),
        context=data.get("context"),
        created_at=event.meta.get("ts", ""),
        instance=state.instance,
    )


def originated(state: State, event: EventLike) -> None:
    data = event.data
    call = state.calls[data["call_id"]] = CallState(
        call_id=data["call_id"],
        direction="outbound",
        state=CallStatus.DIALING,
        caller=data.get("caller_id") or "",
        callee=data["destination"],
        context=data.get("context"),
        created_at=event.meta.get("ts", ""),
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


def claimed(state: State, event: EventLike) -> None:
    state.set_owner(_call(state, event.data), event.data["connection_id"])


def ringing(state: State, event: EventLike) -> None:
    call = _call(state, event.data)
    call.transition(CallStatus.RINGING if call.direction == "inbound" else CallStatus.EARLY)


def early_media(state: State, event: EventLike) -> None:
    call = _call(state, event.data)
    call.transition(CallStatus.EARLY)
    call.early_media = True


def answered(state: State, event: EventLike) -> None:
    call = _call(state, event.data)
    call.transition(CallStatus.ANSWERED)
    call.answered_at = event.meta.get("ts", "")


def bridged(state: State, event: EventLike) -> None:
    a, b = state.calls[event.data["leg_a"]], state.calls[event.data["leg_b"]]
    a.transition(CallStatus.BRIDGED)
    b.transition(CallStatus.BRIDGED)
    a.bridged_with, b.bridged_with = b.call_id, a.call_id
    a.playback_id = b.playback_id = None
    _stop_passthrough(state, a)
    _stop_passthrough(state, b)


def unbridged(state: State, event: EventLike) -> None:
    for leg in (event.data.get("leg_a"), event.data.get("leg_b")):
        call = state.calls.get(leg) if leg else None
        if call is not None:
            call.bridged_with = None
            if call.state is CallStatus.BRIDGED:
                call.transition(CallStatus.ANSWERED)
            elif call.held_from is CallStatus.BRIDGED:
                call.held_from = CallStatus.ANSWERED


def ending(state: State, event: EventLike) -> None:
    _call(state, event.data).ending = event.data["reason"]


def hangup(state: State, event: EventLike) -> None:
    call_id = event.data["call_id"]
    gone = state.calls.pop(call_id, None)
    state.dialogs.pop(call_id, None)
    if gone is not None:
        state.set_owner(gone, None)
    peer = state.calls.get(gone.bridged_with) if gone and gone.bridged_with else None
    if peer is not None and peer.bridged_with == call_id:
        peer.bridged_with = None
        if peer.state is CallStatus.BRIDGED:
            peer.transition(CallStatus.ANSWERED)


def hold_started(state: State, event: EventLike) -> None:
    call = _call(state, event.data)
    call.held_from = call.state
    call.transition(CallStatus.HELD)
    call.playback_id = None


def hold_stopped(state: State, event: EventLike) -> None:
    call = _call(state, event.data)
    call.transition(call.held_from or CallStatus.ANSWERED)
    call.held_from = None


def play_started(state: State, event: EventLike) -> None:
    _call(state, event.data).playback_id = event.data["playback_id"]


def play_finished(state: State, event: EventLike) -> None:
    call = state.calls.get(event.data["call_id"])
    if call is not None and call.playback_id == event.data["playback_id"]:
        call.playback_id = None


def passthrough_started(state: State, event: EventLike) -> None:
    call = _call(state, event.data)
    _stop_passthrough(state, call)
    call.passthrough_from = event.data["source_call_id"]
    source = state.calls.get(event.data["source_call_id"])
    if source is not None:
        source.passthrough_to.add(call.call_id)


def passthrough_stopped(state: State, event: EventLike) -> None:
    call = state.calls.get(event.data["call_id"])
    if call is not None:
        _stop_passthrough(state, call)


def attached(state: State, event: EventLike) -> None:
    data = event.data
    call = _call(state, data)
    if data["mode"] == "control":
        state.set_owner(call, data["connection_id"])
        call.orphaned_at = None
        call.attached.pop(data["connection_id"], None)
    else:
        call.attached[data["connection_id"]] = data["mode"]


def detached(state: State, event: EventLike) -> None:
    data = event.data
    call = _call(state, data)
    if call.owner == data["connection_id"]:
        state.set_owner(call, None)
        call.orphaned_at = event.meta.get("ts", "")
    call.attached.pop(data["connection_id"], None)


EVOLVERS: dict[str, Evolver] = {
    "service.started": service_started,
    "session.closed": session_closed,
    "observation": observation,
    "call.incoming": incoming,
    "call.originated": originated,
    "call.claimed": claimed,
    "call.ringing": ringing,
    "call.early_media": early_media,
    "call.answered": answered,
    "call.busy": unchanged,
    "call.no_answer": unchanged,
    "call.dtmf": unchanged,
    "call.bridged": bridged,
    "call.unbridged": unbridged,
    "call.ending": ending,
    "call.hangup": hangup,
    "media.hold.started": hold_started,
    "media.hold.stopped": hold_stopped,
    "media.play.started": play_started,
    "media.play.finished": play_finished,
    "media.ringback.passthrough.started": passthrough_started,
    "media.ringback.passthrough.stopped": passthrough_stopped,
    "call.attached": attached,
    "call.detached": detached,
}
