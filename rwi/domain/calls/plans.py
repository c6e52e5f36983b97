"""What call events make happen on SIP and media, planned purely (``Feature.plans``)."""

from __future__ import annotations

from rwi.domain.effects import (
    Answer,
    Bridge,
    Dial,
    EarlyMedia,
    Effect,
    EndStaleDialog,
    Hangup,
    Hold,
    Play,
    Reject,
    Ring,
    StartTimer,
    StopEarlyMedia,
    StopPlay,
    Unbridge,
    Unhold,
)
from rwi.domain.model import EventLike, State, call_stream

#: Why a playback was stopped by a decision (the engine must be told); a prompt that
#: ran out or was cut by a digit has already stopped by itself.
_STOPPED_BY_DECISION = frozenset(
    {"stopped", "replaced", "hangup", "hold", "bridged", "answered", "ended"}
)


def plan(state: State, event: EventLike) -> list[Effect]:
    """The effects a call event requires, given the state just before it (pure)."""
    data = event.data
    call = state.calls.get(data.get("call_id", "")) if "call_id" in data else None
    if call is not None and call.instance != state.instance:
        # A call of a previous process, ended at this one's start: its legs went with
        # that process; its SIP dialog is ended from its record (``service.started``).
        return []
    match event.type:
        case "service.started":
            return [
                EndStaleDialog(call_id, dialog, state.calls[call_id].answered_at is not None)
                for call_id, dialog in state.dialogs.items()
                if call_id in state.calls
            ]
        case "observation" if data.get("type") == "sip.call.refused":
            # the dialplan refused the INVITE: answer it with the route's status
            return [Reject(data["call_id"], int(data["sip_status"]))]
        case "call.originated":
            headers = tuple(sorted(data.get("extra_headers", {}).items()))
            timeout = float(data.get("timeout_secs", 60))
            return [
                Dial(data["call_id"], data["destination"], data.get("caller_id"), headers, timeout),
                StartTimer("originate_timeout", call_stream(data["call_id"]), timeout),
            ]
        case "call.incoming" if not data.get("route_user"):
            context = state.policy.context(data.get("context"))
            timeout = context.no_answer_timeout_secs
            return [StartTimer("claim_timeout", call_stream(data["call_id"]), timeout)]
        case "call.ringing" if call is not None and call.direction == "inbound":
            return [Ring(call.call_id)]
        case "call.answered" if call is not None and call.direction == "inbound":
            return [Answer(call.call_id)]
        case "call.ending" if call is not None:
            return [Hangup(call.call_id)]
        case "call.hangup" if call is not None:
            if data.get("hangup_by") == "remote" or call.ending is not None:
                return []  # gone already (or asked to go at ``call.ending``)
            unanswered_inbound = call.direction == "inbound" and call.answered_at is None
            if unanswered_inbound and data.get("sip_status"):
                return [Reject(call.call_id, int(data["sip_status"]))]
            return [Hangup(call.call_id)]
        case "call.bridged":
            return [Bridge(data["leg_a"], data["leg_b"])]
        case "call.unbridged" if data.get("reason") != "hangup" and data.get("leg_b"):
            return [Unbridge(data["leg_a"], data["leg_b"])]
        case "media.hold.started":
            return [Hold(data["call_id"], data.get("music"))]
        case "media.hold.stopped":
            return [Unhold(data["call_id"])]
        case "media.play.started":
            return [
                Play(
                    data["call_id"],
                    data["playback_id"],
                    data.get("source", {}),
                    bool(data.get("loop")),
                    bool(data.get("interrupt_on_dtmf")),
                )
            ]
        case "media.play.finished" if data.get("reason") in _STOPPED_BY_DECISION:
            return [StopPlay(data["call_id"])]
        case "media.ringback.passthrough.started":
            return [EarlyMedia(data["source_call_id"], data["call_id"])]
        case "media.ringback.passthrough.stopped":
            return [StopEarlyMedia(data["source_call_id"], data["call_id"])]
        case "session.closed" | "call.detached":
            connection_id = data["connection_id"]
            ts = event.meta.get("ts", "")
            if event.type == "call.detached":
                owned = [call] if call is not None and call.owner == connection_id else []
            else:
                owned = [c for c in state.calls.values() if c.owner == connection_id]
            return [
                StartTimer(
                    "orphan_timeout", call_stream(c.call_id), state.policy.orphan_hold_secs, ts
                )
                for c in owned
            ]
        case _:
            return []


#: The event types ``plan`` looks at.
PLANNED = (
    "service.started",
    "observation",
    "call.originated",
    "call.incoming",
    "call.ringing",
    "call.answered",
    "call.ending",
    "call.hangup",
    "call.bridged",
    "call.unbridged",
    "media.hold.started",
    "media.hold.stopped",
    "media.play.started",
    "media.play.finished",
    "media.ringback.passthrough.started",
    "media.ringback.passthrough.stopped",
    "session.closed",
    "call.detached",
)
