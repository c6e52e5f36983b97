"""Call commands: the call state machine of the contract (§6), ownership and claims (§4).

Pure: each handler reads the state and returns the events a command causes, or raises
``RwiError``. What those events make happen on SIP and media is planned from the events
afterwards (``rwi.domain.calls.plans``), once they are durable.
"""

from __future__ import annotations

from typing import Any

from rwi.domain.call import ANSWERABLE, CallStatus
from rwi.domain.calls.legs import (
    DESTINATION,
    claim,
    get_call,
    hangup_events,
    hold_music_id,
    owned,
    stop_playback,
)
from rwi.domain.feature import Handler
from rwi.domain.model import Command, Decision, Emit, State, call_stream
from rwi.errors import RwiError
from rwi.sounds import check_sound_name

REJECT_CODES = {"busy": 486, "forbidden": 403, "not_found": 404, "decline": 603}
DEFAULT_HOLD_MUSIC = "hold_music.wav"


# --- commands ------------------------------------------------------------------------


def originate(state: State, command: Command, ts: str) -> Decision:
    params = command.params
    call_id = params["call_id"]
    if call_id in state.calls:
        raise RwiError("call_exists", f"call {call_id!r} is already active")
    if not DESTINATION.match(params["destination"]):
        raise RwiError("invalid_params", "params.destination must be a sip:, sips: or tel: URI")
    if state.owned_by(command.connection_id) >= state.policy.max_calls_per_connection:
        raise RwiError(
            "rate_limited",
            f"max_calls_per_connection ({state.policy.max_calls_per_connection}) reached",
        )
    for key in ("hold_music_target", "ringback_target"):
        if key in params:
            target = owned(state, command, params[key])
            target.require(f"call.originate with {key}", CallStatus.ANSWERED)
    data: dict[str, Any] = {
        "call_id": call_id,
        "owner": command.connection_id,
        "token": command.token,
        "destination": params["destination"],
        "caller_id": params.get("caller_id"),
        "timeout_secs": params.get("timeout_secs", 60),
        "context": params.get("context"),
        "extra_headers": params.get("extra_headers", {}),
        "ringback": params.get("ringback", "local"),
    }
    for key in ("hold_music", "hold_music_target", "ringback_target"):
        if key in params:
            data[key] = params[key]
    events = [Emit(call_stream(call_id), "call.originated", data)]
    if "hold_music_target" in params:
        # The waiting party hears music until this leg answers or fails.
        target = state.calls[params["hold_music_target"]]
        music = dict(params.get("hold_music") or {"type": "file", "uri": DEFAULT_HOLD_MUSIC})
        loop = bool(music.pop("loop", True))
        if music["type"] == "file" and "uri" not in music:
            raise RwiError("invalid_params", "params.hold_music.uri is required for type file")
        events += stop_playback(target, "replaced")
        events.append(
            Emit(
                call_stream(target.call_id),
                "media.play.started",
                {
                    "call_id": target.call_id,
                    "playback_id": hold_music_id(call_id),
                    "source": music,
                    "loop": loop,
                    "interrupt_on_dtmf": False,
                },
            )
        )
    return Decision(tuple(events), {"call_id": call_id})


def set_ringback_source(state: State, command: Command, ts: str) -> Decision:
    """``target`` hears ``source``'s early media (its 183 announcements or ringback)."""
    target = owned(state, command, command.params["target_call_id"])
    source = owned(state, command, command.params["source_call_id"])
    if target.call_id == source.call_id:
        raise RwiError("invalid_params", "params.source_call_id must differ from target_call_id")
    target.require("call.set_ringback_source", CallStatus.ANSWERED)
    if source.direction != "outbound":
        raise RwiError(
            "invalid_state", f"call {source.call_id!r} is inbound; it has no early media to pass"
        )
    source.require("call.set_ringback_source", CallStatus.DIALING, CallStatus.EARLY)
    events = stop_playback(target, "replaced")
    events.append(
        Emit(
            call_stream(target.call_id),
            "media.ringback.passthrough.started",
            {"call_id": target.call_id, "source_call_id": source.call_id},
        )
    )
    return Decision(tuple(events), {"call_id": target.call_id})


def answer(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call, events = claim(state, command, call_id, "call.answer")
    call.require("call.answer", *ANSWERABLE)
    events.append(Emit(call_stream(call_id), "call.answered", {"call_id": call_id}))
    return Decision(tuple(events), {"call_id": call_id})


def reject(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call, events = claim(state, command, call_id, "call.reject")
    call.require("call.reject", *ANSWERABLE)
    reason = command.params.get("reason", "decline")
    events += hangup_events(state, call, ts, "rejected", REJECT_CODES[reason], "rwi")
    return Decision(tuple(events), {"call_id": call_id, "sip_status": REJECT_CODES[reason]})


def ring(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call, events = claim(state, command, call_id, "call.ring")
    call.require("call.ring", CallStatus.OFFERED)
    events.append(Emit(call_stream(call_id), "call.ringing", {"call_id": call_id}))
    return Decision(tuple(events), {"call_id": call_id})


def hangup(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call = owned(state, command, call_id)
    answered = call.answered_at is not None
    code = command.params.get("code")
    if code is None and not answered:
        code = 487 if call.direction == "outbound" else 480
    reason = command.params.get("reason", "rwi")
    events = stop_playback(call, "hangup") + hangup_events(state, call, ts, reason, code, "rwi")
    return Decision(tuple(events), {"call_id": call_id})


def bridge(state: State, command: Command, ts: str) -> Decision:
    leg_a, leg_b = command.params["leg_a"], command.params["leg_b"]
    if leg_a == leg_b:
        raise RwiError("invalid_params", "params.leg_b must differ from params.leg_a")
    a = owned(state, command, leg_a)
    b = owned(state, command, leg_b)
    for call in (a, b):
        bridged = f"call {call.call_id!r} is already bridged with {call.bridged_with!r}"
        call.require(
            "call.bridge",
            CallStatus.ANSWERED,
            message=bridged if call.state is CallStatus.BRIDGED else None,
        )
        conference = state.conference_of(call.call_id)
        if conference is not None:
            # a member hears the conference: bridging it too would mix both; leaving the
            # conference is the client's explicit step (conference.remove), not a side
            # effect on the conference's other members
            raise RwiError(
                "invalid_state",
                f"call {call.call_id!r} is in conference {conference.conf_id!r}; "
                "call.bridge needs it removed first",
            )
    events = stop_playback(a, "bridged") + stop_playback(b, "bridged")
    for call in (a, b):
        if call.passthrough_from is not None:
            events.append(
                Emit(
                    call_stream(call.call_id),
                    "media.ringback.passthrough.stopped",
                    {
                        "call_id": call.call_id,
                        "source_call_id": call.passthrough_from,
                        "reason": "bridged",
                    },
                )
            )
    events.append(
        Emit(call_stream(leg_a), "call.bridged", {"call_id": leg_a, "leg_a": leg_a, "leg_b": leg_b})
    )
    return Decision(tuple(events), {"leg_a": leg_a, "leg_b": leg_b})


def unbridge(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call = owned(state, command, call_id)
    call.require("call.unbridge", CallStatus.BRIDGED)
    peer = call.bridged_with
    event = Emit(
        call_stream(call_id),
        "call.unbridged",
        {"call_id": call_id, "leg_a": call_id, "leg_b": peer, "reason": "unbridge"},
    )
    return Decision((event,), {"call_id": call_id})


def hold(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call = owned(state, command, call_id)
    call.require("call.hold", CallStatus.ANSWERED, CallStatus.BRIDGED)
    music = command.params.get("music")
    if music is not None:
        check_sound_name("params.music", music)
    events = stop_playback(call, "hold")
    events.append(
        Emit(call_stream(call_id), "media.hold.started", {"call_id": call_id, "music": music})
    )
    return Decision(tuple(events), {"call_id": call_id})


def unhold(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call = owned(state, command, call_id)
    call.require("call.unhold", CallStatus.HELD)
    event = Emit(call_stream(call_id), "media.hold.stopped", {"call_id": call_id})
    return Decision((event,), {"call_id": call_id})


def play(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call = owned(state, command, call_id)
    call.require("media.play", CallStatus.ANSWERED)
    source = dict(command.params["source"])
    if source["type"] == "file":
        if "uri" not in source:
            raise RwiError("invalid_params", "params.source.uri is required for type file")
        check_sound_name("params.source.uri", source["uri"])
    loop = bool(command.params.get("loop", source.pop("loop", False)))
    playback_id = f"pb-{command.nonce}"
    events = stop_playback(call, "replaced")
    events.append(
        Emit(
            call_stream(call_id),
            "media.play.started",
            {
                "call_id": call_id,
                "playback_id": playback_id,
                "source": source,
                "loop": loop,
                "interrupt_on_dtmf": bool(command.params.get("interrupt_on_dtmf", False)),
            },
        )
    )
    return Decision(tuple(events), {"playback_id": playback_id})


def stop(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call = owned(state, command, call_id)
    # Stopping nothing is not an error: clients stop defensively before a bridge.
    return Decision(tuple(stop_playback(call, "stopped")), {"playback_id": call.playback_id})


def attach(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    mode = command.params.get("mode", "control")
    call = get_call(state, call_id)
    supervisor = "supervisor.control" in command.scopes
    if mode != "control" and not supervisor:
        raise RwiError("forbidden", "scope required: supervisor.control")
    if mode == "control":
        if call.owner == command.connection_id:
            return Decision((), {"call_id": call_id, "mode": mode})
        if call.owner is not None and not (command.params.get("force") and supervisor):
            if command.params.get("force"):
                raise RwiError("forbidden", "scope required: supervisor.control")
            raise RwiError("already_owned", f"call {call_id!r} is owned by another connection")
        if call.owner is None and call.orphaned_at is None:
            # an offered call is claimed, not attached to
            call.require(
                "session.attach_call",
                *(status for status in CallStatus if status not in ANSWERABLE),
                message=(
                    f"call {call_id!r} is offered: "
                    "claim it with call.answer, call.reject or call.ring"
                ),
            )
    event = Emit(
        call_stream(call_id),
        "call.attached",
        {"call_id": call_id, "connection_id": command.connection_id, "mode": mode},
    )
    return Decision((event,), {"call_id": call_id, "mode": mode})


def detach(state: State, command: Command, ts: str) -> Decision:
    call_id = command.params["call_id"]
    call = get_call(state, call_id)
    if call.owner != command.connection_id and command.connection_id not in call.attached:
        raise RwiError("invalid_state", f"this connection is not attached to call {call_id!r}")
    event = Emit(
        call_stream(call_id),
        "call.detached",
        {"call_id": call_id, "connection_id": command.connection_id},
    )
    return Decision((event,), {"call_id": call_id})


HANDLERS: dict[str, Handler] = {
    "call.originate": originate,
    "call.answer": answer,
    "call.reject": reject,
    "call.ring": ring,
    "call.hangup": hangup,
    "call.bridge": bridge,
    "call.unbridge": unbridge,
    "call.hold": hold,
    "call.unhold": unhold,
    "media.play": play,
    "media.stop": stop,
    "call.set_ringback_source": set_ringback_source,
    "session.attach_call": attach,
    "session.detach_call": detach,
}
