"""Transfers (contract §5): blind, attended (consultation), complete and cancel, decided
purely, plus what the end or the answer of a leg means for a transfer in progress.

Three ways a leg ``A`` is transferred:

- ``call.transfer`` of a bridged leg: a REFER goes to A's far end (``method: "refer"``);
  the NOTIFY sipfrag it sends back decides ``call.transfer.accepted`` / ``.failed``.
- ``call.transfer`` of an answered, unbridged leg: the PBX dials the target itself as a
  new leg ``xfer-<A>-<n>`` (``method: "bridge"``); A hears ringback meanwhile and is
  bridged to it on answer (``call.transfer.accepted``), or stays up on failure.
- ``call.transfer.attended``: A is held (music), a consultation leg ``consult-<A>-<n>``
  is dialled, and A's bridge peer ``B`` (if any) hears its ringback and is bridged to it
  on answer; ``complete`` hangs up B and bridges A with the consultation leg,
  ``cancel`` (or the consultation leg failing or ending) restores A with B.

The links live on the legs (``transfer_kind``/``transfer_leg``/``transfer_peer`` on A,
``transfer_of`` on the new leg) and are cleared by the internal ``call.transfer.ended``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rwi.domain.call import CallState, CallStatus
from rwi.domain.calls.delivery import CallResume, audience
from rwi.domain.calls.legs import (
    DESTINATION,
    hangup_events,
    owned,
    stop_playback,
)
from rwi.domain.effects import Effect, Refer
from rwi.domain.feature import Feature, Handler, unchanged
from rwi.domain.model import Command, Decision, Emit, EventLike, Observation, State, call_stream
from rwi.errors import RwiError

MAX_ID = 128


def _new_leg_id(prefix: str, call_id: str, nonce: str) -> str:
    suffix = nonce[:8]
    leg_id = f"{prefix}-{call_id}-{suffix}"
    return leg_id if len(leg_id) <= MAX_ID else f"{prefix}-{suffix}"


def _check_target(target: str) -> None:
    if not DESTINATION.match(target):
        raise RwiError("invalid_params", "params.target must be a sip:, sips: or tel: URI")


def _not_pending(call: CallState, action: str) -> None:
    if call.transfer_leg is not None:
        raise RwiError(
            "invalid_state",
            f"call {call.call_id!r} has a transfer in progress ({call.transfer_leg!r}); "
            f"{action} needs it completed or cancelled first",
        )


def _room_for_one_more(state: State, command: Command) -> None:
    if state.owned_by(command.connection_id) >= state.policy.max_calls_per_connection:
        raise RwiError(
            "rate_limited",
            f"max_calls_per_connection ({state.policy.max_calls_per_connection}) reached",
        )


def _dial(
    call: CallState,
    leg_id: str,
    target: str,
    kind: str,
    timeout: float,
    *,
    ringback_target: str | None,
    peer: str | None = None,
) -> Emit:
    """The new leg a transfer dials, owned like the leg it transfers."""
    data: dict[str, Any] = {
        "call_id": leg_id,
        "owner": call.owner,
        "token": None,
        "destination": target,
        "caller_id": None,
        "timeout_secs": timeout,
        "context": call.context,
        "extra_headers": {},
        "ringback": "local",
        "transfer_of": call.call_id,
        "transfer_kind": kind,
    }
    if ringback_target is not None:
        data["ringback_target"] = ringback_target
    if peer is not None:
        data["transfer_peer"] = peer
    return Emit(call_stream(leg_id), "call.originated", data)


def _ended(call_id: str, leg_id: str | None, outcome: str) -> Emit:
    return _event(call_id, "call.transfer.ended", transfer_call_id=leg_id, outcome=outcome)


def _event(call_id: str, kind: str, **data: Any) -> Emit:
    return Emit(call_stream(call_id), kind, {"call_id": call_id, **data})


def _unbridged(a: str, b: str) -> Emit:
    return _event(a, "call.unbridged", leg_a=a, leg_b=b, reason="transfer")


def _bridged(a: str, b: str) -> Emit:
    return _event(a, "call.bridged", leg_a=a, leg_b=b)


# --- commands ------------------------------------------------------------------------


def transfer(state: State, command: Command, ts: str) -> Decision:
    """Blind transfer: REFER the far end of a bridged leg, or re-route an unbridged one."""
    call = owned(state, command, command.params["call_id"])
    target = command.params["target"]
    _check_target(target)
    call.require("call.transfer", CallStatus.ANSWERED, CallStatus.BRIDGED)
    _not_pending(call, "call.transfer")
    if call.state is CallStatus.BRIDGED:
        event = _event(call.call_id, "call.transferred", target=target, method="refer")
        return Decision((event,), {"call_id": call.call_id, "method": "refer"})
    _room_for_one_more(state, command)
    leg_id = _new_leg_id("xfer", call.call_id, command.nonce)
    events = stop_playback(call, "replaced")
    events.append(
        _event(
            call.call_id,
            "call.transferred",
            target=target,
            method="bridge",
            transfer_call_id=leg_id,
        )
    )
    events.append(_dial(call, leg_id, target, "blind", 60.0, ringback_target=call.call_id))
    return Decision(
        tuple(events), {"call_id": call.call_id, "method": "bridge", "transfer_call_id": leg_id}
    )


def attended(state: State, command: Command, ts: str) -> Decision:
    call = owned(state, command, command.params["call_id"])
    target = command.params["target"]
    _check_target(target)
    call.require("call.transfer.attended", CallStatus.ANSWERED, CallStatus.BRIDGED, CallStatus.HELD)
    _not_pending(call, "call.transfer.attended")
    _room_for_one_more(state, command)
    leg_id = _new_leg_id("consult", call.call_id, command.nonce)
    peer = call.bridged_with
    events: list[Emit] = []
    if peer is not None:
        events.append(_unbridged(call.call_id, peer))
    if call.state is not CallStatus.HELD:
        events += stop_playback(call, "hold")
        events.append(_event(call.call_id, "media.hold.started", music=None))
    timeout = float(command.params.get("timeout_secs", 60))
    events.append(_dial(call, leg_id, target, "attended", timeout, ringback_target=peer, peer=peer))
    return Decision(tuple(events), {"call_id": call.call_id, "consultation_call_id": leg_id})


def _consultation(state: State, command: Command, leg_id: str) -> tuple[CallState, CallState]:
    """The consultation leg ``leg_id`` and the leg it transfers, if this connection's."""
    leg = state.calls.get(leg_id)
    call = state.calls.get(leg.transfer_of or "") if leg is not None else None
    if (
        leg is None
        or call is None
        or call.transfer_leg != leg_id
        or call.transfer_kind != "attended"
    ):
        raise RwiError("not_found", f"no consultation {leg_id!r} is in progress")
    owned(state, command, leg_id)
    return call, leg


def complete(state: State, command: Command, ts: str) -> Decision:
    call = owned(state, command, command.params["call_id"])
    consult_id = command.params["consultation_call_id"]
    found, leg = _consultation(state, command, consult_id)
    if found is not call:
        raise RwiError(
            "not_found", f"no consultation {consult_id!r} is in progress for call {call.call_id!r}"
        )
    if call.bridged_with is not None:
        raise RwiError(
            "invalid_state",
            f"call {call.call_id!r} is bridged with {call.bridged_with!r}; unbridge it first",
        )
    leg.require(
        "call.transfer.complete",
        CallStatus.ANSWERED,
        CallStatus.BRIDGED,
        message=(
            f"consultation call {consult_id!r} is {leg.state.value}; "
            "call.transfer.complete needs it answered"
        ),
    )
    events: list[Emit] = []
    peer = state.calls.get(call.transfer_peer) if call.transfer_peer else None
    if peer is not None and peer is not leg:
        events += hangup_events(state, peer, ts, "transfer", None, "rwi")
    elif leg.bridged_with is not None:
        events.append(_unbridged(leg.call_id, leg.bridged_with))
    if call.state is CallStatus.HELD:
        events.append(_event(call.call_id, "media.hold.stopped"))
    events += stop_playback(call, "bridged") if call.state is not CallStatus.HELD else []
    events.append(_bridged(call.call_id, leg.call_id))
    events.append(_ended(call.call_id, leg.call_id, "completed"))
    return Decision(tuple(events), {"call_id": call.call_id, "leg_a": call.call_id,
                                    "leg_b": leg.call_id})  # fmt: skip


def cancel(state: State, command: Command, ts: str) -> Decision:
    consult_id = command.params["consultation_call_id"]
    call, leg = _consultation(state, command, consult_id)
    code = None if leg.answered_at is not None else 487
    # The restore (unhold, bridge back) follows from the leg's end: see ``aftermath``.
    events = stop_playback(leg, "hangup") + hangup_events(state, leg, ts, "canceled", code, "rwi")
    return Decision(tuple(events), {"call_id": call.call_id, "consultation_call_id": consult_id})


HANDLERS: dict[str, Handler] = {
    "call.transfer": transfer,
    "call.transfer.attended": attended,
    "call.transfer.complete": complete,
    "call.transfer.cancel": cancel,
}


# --- what other happenings mean for a transfer ---------------------------------------


def answered(state: State, events: Sequence[Emit], ts: str) -> list[Emit]:
    """Legs dialled for a transfer that ``events`` answer (state: before ``events``)."""
    out: list[Emit] = []
    for event in events:
        if event.type == "call.answered":
            leg = state.calls.get(event.data["call_id"])
            if leg is not None and leg.transfer_of is not None:
                out += on_answered(state, leg)
    return out


def on_answered(state: State, leg: CallState) -> list[Emit]:
    """A leg dialled for a transfer answered (events after its ``call.answered``)."""
    call = state.calls.get(leg.transfer_of) if leg.transfer_of else None
    if call is None or call.transfer_leg != leg.call_id:
        return []
    if call.transfer_kind == "blind":
        events = [
            _event(
                call.call_id, "call.transfer.accepted", transfer_call_id=leg.call_id, sip_status=200
            )
        ]
        if call.state is CallStatus.ANSWERED:
            events.append(_bridged(call.call_id, leg.call_id))
        events.append(_ended(call.call_id, leg.call_id, "completed"))
        return events
    peer = state.calls.get(call.transfer_peer) if call.transfer_peer else None
    if call.transfer_kind == "attended" and peer is not None and peer.state is CallStatus.ANSWERED:
        return [_bridged(peer.call_id, leg.call_id)]
    return []


def aftermath(state: State, events: Sequence[Emit], ts: str) -> list[Emit]:
    """What the legs ended by ``events`` leave for transfers in progress (state: before
    ``events``). A transfer's new leg gone: the transfer failed or was cancelled, and the
    transferred leg is restored. A transferred leg gone: a blind transfer's new leg is
    cancelled with it; a consultation goes on (its parties may still talk)."""
    gone = [e.data["call_id"] for e in events if e.type == "call.hangup"]
    if not gone:
        return []
    hangups = {e.data["call_id"]: e.data for e in events if e.type == "call.hangup"}
    settled = {e.data["call_id"] for e in events if e.type == "call.transfer.ended"}
    out: list[Emit] = []
    for call_id in gone:
        leg = state.calls.get(call_id)
        if leg is None:
            continue
        call = state.calls.get(leg.transfer_of) if leg.transfer_of else None
        if (
            call is not None
            and call.transfer_leg == call_id
            and call.call_id not in settled
            and call.call_id not in hangups
        ):
            out += _restore(state, call, leg, hangups[call_id], set(hangups))
            settled.add(call.call_id)
        if leg.transfer_leg is not None and call_id not in settled:
            new = state.calls.get(leg.transfer_leg)
            if leg.transfer_kind == "blind" and new is not None and new.call_id not in hangups:
                out += hangup_events(state, new, ts, "canceled", 487, "system")
            out.append(_ended(call_id, leg.transfer_leg, "abandoned"))
            settled.add(call_id)
    return out


def _restore(
    state: State, call: CallState, leg: CallState, hangup: dict[str, Any], gone: set[str]
) -> list[Emit]:
    events: list[Emit] = []
    if call.transfer_kind == "attended":
        if call.state is CallStatus.HELD:
            events.append(_event(call.call_id, "media.hold.stopped"))
        peer = state.calls.get(call.transfer_peer) if call.transfer_peer else None
        if (
            peer is not None
            and call.bridged_with is None
            and peer.call_id not in gone
            and (peer.state is CallStatus.ANSWERED or peer.bridged_with == leg.call_id)
        ):
            events.append(_bridged(call.call_id, peer.call_id))
    cancelled = hangup.get("hangup_by") == "rwi"
    if not cancelled:
        key = "consultation_call_id" if call.transfer_kind == "attended" else "transfer_call_id"
        events.append(
            _event(
                call.call_id,
                "call.transfer.failed",
                **{key: leg.call_id},
                sip_status=hangup.get("sip_status"),
                reason=hangup.get("reason"),
            )
        )
    events.append(_ended(call.call_id, leg.call_id, "canceled" if cancelled else "failed"))
    return events


def refer_status(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """The far end's answer to our REFER (``sip.refer.result``) or its NOTIFY sipfrag
    (``sip.refer.notify``): 2xx in a NOTIFY accepts, >= 300 in either fails."""
    call = state.calls.get(obs.data["call_id"])
    status = obs.data.get("status")
    if call is None or call.transfer_kind != "refer" or not isinstance(status, int):
        return ()
    if status >= 300:
        return (
            _event(call.call_id, "call.transfer.failed", sip_status=status),
            _ended(call.call_id, None, "failed"),
        )
    if 200 <= status < 300 and obs.type == "sip.refer.notify":
        return (_event(call.call_id, "call.transfer.accepted", sip_status=status),)
    return ()


# --- folds and effects ---------------------------------------------------------------


def _originated(state: State, event: EventLike) -> None:
    data = event.data
    transferred = state.calls.get(data.get("transfer_of") or "")
    if transferred is not None:
        transferred.transfer_kind = data.get("transfer_kind")
        transferred.transfer_leg = data["call_id"]
        transferred.transfer_peer = data.get("transfer_peer")


def _transferred(state: State, event: EventLike) -> None:
    if event.data.get("method") == "refer":
        state.calls[event.data["call_id"]].transfer_kind = "refer"


def _accepted(state: State, event: EventLike) -> None:
    accepted = state.calls[event.data["call_id"]]
    if accepted.transfer_kind == "refer":
        accepted.transfer_kind = "referred"


def _ended_fold(state: State, event: EventLike) -> None:
    ended = state.calls.get(event.data["call_id"])
    if ended is not None:
        ended.transfer_kind = ended.transfer_leg = ended.transfer_peer = None
    new_leg = state.calls.get(event.data.get("transfer_call_id") or "")
    if new_leg is not None:
        new_leg.transfer_of = None


def _plan_refer(state: State, event: EventLike) -> list[Effect]:
    if event.data.get("method") == "refer":
        return [Refer(event.data["call_id"], event.data["target"])]
    return []


FEATURE = Feature(
    name="transfers",
    commands=HANDLERS,
    needs_media=True,
    observations={"sip.refer.result": refer_status, "sip.refer.notify": refer_status},
    evolvers={
        "call.originated": _originated,
        "call.transferred": _transferred,
        "call.transfer.accepted": _accepted,
        "call.transfer.failed": unchanged,
        "call.transfer.ended": _ended_fold,
    },
    plans={"call.transferred": _plan_refer},
    # a transfer's new leg answering completes it; a leg ending fails or abandons it
    reactions=(answered, aftermath),
    pushed=frozenset({"call.transferred", "call.transfer.accepted", "call.transfer.failed"}),
    # transfer events are events of the transferred call: delivered like call events
    audience=audience,
    resume=CallResume,
)
