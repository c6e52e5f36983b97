"""What outside happenings mean for the calls: SIP, media and timers, decided purely.

An observation is appended to the log first (as an ``observation`` event) and then the
events it causes, so a replay sees the same input and reaches the same state.
"""

from __future__ import annotations

from rwi.domain.call import ANSWERABLE, RINGING_OUT, CallState, CallStatus
from rwi.domain.calls.legs import (
    hangup_events,
    no_answer_tone_id,
    release_links,
    ringback_id,
    stop_playback,
)
from rwi.domain.calls.no_answer import no_answer_action, tone_over
from rwi.domain.feature import Rule
from rwi.domain.model import Emit, Observation, State, call_stream

BUSY = (486, 600)


def _offered(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    data = obs.data
    call_id = data["call_id"]
    if call_id in state.calls:
        return ()
    if data.get("route_user"):
        return _to_local_user(obs)
    return (
        Emit(
            call_stream(call_id),
            "call.incoming",
            {
                "call_id": call_id,
                "context": data["context"],
                "caller": data.get("caller", ""),
                "callee": data.get("callee", ""),
                "direction": "inbound",
                "trunk": data.get("trunk"),
                "headers": data.get("headers", {}),
            },
        ),
    )


def _to_local_user(obs: Observation) -> tuple[Emit, ...]:
    """A dialplan route to a local user: a plain B2BUA call, both legs logged."""
    data = obs.data
    a_leg, b_leg = data["call_id"], f"{data['call_id']}-b"
    incoming = {
        "call_id": a_leg,
        "context": None,
        "caller": data.get("caller", ""),
        "callee": data.get("callee", ""),
        "direction": "inbound",
        "trunk": data.get("trunk"),
        "headers": data.get("headers", {}),
        "route_user": data["route_user"],
    }
    originated = {
        "call_id": b_leg,
        "owner": None,
        "token": None,
        "destination": f"sip:{data['route_user']}@local",
        "caller_id": data.get("caller") or None,
        "timeout_secs": 60,
        "context": None,
        "extra_headers": {},
        "ringback": "none",
        "b2bua_peer": a_leg,
    }
    return (
        Emit(call_stream(a_leg), "call.incoming", incoming),
        Emit(call_stream(b_leg), "call.originated", originated),
    )


def _progress(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """180/183 on an outbound leg: ringing, or early media when the 183 has SDP; and
    the ringback its ``ringback_target`` hears meanwhile."""
    call = state.calls.get(obs.data["call_id"])
    if call is None or call.direction != "outbound" or call.state not in RINGING_OUT:
        return ()
    if call.ending is not None:
        return ()  # rings for nobody: SIP is ending it
    status = obs.data.get("status", 180)
    early = bool(obs.data.get("sdp"))
    events: list[Emit] = []
    data = {"call_id": call.call_id, "sip_status": status}
    if call.state is CallStatus.DIALING:
        events.append(Emit(call_stream(call.call_id), "call.ringing", data))
    if early and not call.early_media:
        # the first 183 with SDP, also after a 180: the far end now sends audio
        events.append(Emit(call_stream(call.call_id), "call.early_media", data))
    events += _ringback(state, call, early)
    peer = state.calls.get(call.b2bua_peer) if call.b2bua_peer else None
    if peer is not None and peer.state is CallStatus.OFFERED:
        events.append(Emit(call_stream(peer.call_id), "call.ringing", {"call_id": peer.call_id}))
    return tuple(events)


def _ringback(state: State, call: CallState, early: bool) -> list[Emit]:
    target = state.calls.get(call.ringback_target) if call.ringback_target else None
    if target is None or target.state is not CallStatus.ANSWERED or call.ringback == "none":
        return []
    if target.passthrough_from == call.call_id:
        return []
    if call.ringback == "passthrough" and early:
        # The far end's own ringback or announcement replaces our local tone.
        events = stop_playback(target, "replaced")
        events.append(
            Emit(
                call_stream(target.call_id),
                "media.ringback.passthrough.started",
                {"call_id": target.call_id, "source_call_id": call.call_id},
            )
        )
        return events
    if target.playback_id is not None:
        return []  # already hearing ringback, hold music or a prompt
    return [
        Emit(
            call_stream(target.call_id),
            "media.play.started",
            {
                "call_id": target.call_id,
                "playback_id": ringback_id(call.call_id),
                "source": {"type": "ringback"},
                "loop": True,
                "interrupt_on_dtmf": False,
            },
        )
    ]


def _answered(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    call = state.calls.get(obs.data["call_id"])
    if call is None or call.direction != "outbound" or call.answered_at is not None:
        return ()
    if call.ending is not None:
        return ()  # an answer that crossed our CANCEL: SIP ACKs and BYEs it
    answered = Emit(call_stream(call.call_id), "call.answered", {"call_id": call.call_id})
    events = [*release_links(state, call, "answered"), answered]
    peer = state.calls.get(call.b2bua_peer) if call.b2bua_peer else None
    if peer is not None and (peer.answered_at is None or peer.state is CallStatus.ANSWERED):
        # the callee answered a plain B2BUA call: answer the caller and join them
        if peer.answered_at is None:
            events.append(
                Emit(call_stream(peer.call_id), "call.answered", {"call_id": peer.call_id})
            )
        events.append(
            Emit(
                call_stream(peer.call_id),
                "call.bridged",
                {"call_id": peer.call_id, "leg_a": peer.call_id, "leg_b": call.call_id},
            )
        )
    return tuple(events)


def _failed(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """A final non-2xx to our INVITE: busy, or another failure."""
    call = state.calls.get(obs.data["call_id"])
    if call is None or call.answered_at is not None:
        return ()
    status = obs.data.get("sip_status")
    if call.ending is not None:
        return tuple(hangup_events(state, call, ts, call.ending, status, "system"))
    events: list[Emit] = []
    if status in BUSY:
        events.append(
            Emit(
                call_stream(call.call_id),
                "call.busy",
                {"call_id": call.call_id, "sip_status": status},
            )
        )
        reason = "busy"
    else:
        reason = "failed"
    events += hangup_events(state, call, ts, reason, status, "remote")
    return tuple(events)


def _ended(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """The far end hung up (BYE, or CANCEL of an offered call), or a leg we are ending
    is over (``call.ending``: its reason, and the status that ended it)."""
    call = state.calls.get(obs.data["call_id"])
    if call is None:
        return ()
    if call.ending is not None:
        status = obs.data.get("sip_status")
        return tuple(hangup_events(state, call, ts, call.ending, status, "system"))
    if obs.data.get("reason"):
        reason = obs.data["reason"]
    elif call.transfer_kind == "referred":
        reason = "transfer"  # the far end accepted our REFER and left
    elif call.answered_at is None and call.direction == "inbound":
        reason = "canceled"
    else:
        reason = "caller" if call.direction == "inbound" else "callee"
    by = "remote" if obs.data.get("by", "remote") == "remote" else "system"
    return tuple(hangup_events(state, call, ts, reason, obs.data.get("sip_status"), by))


def _dtmf(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    call = state.calls.get(obs.data["call_id"])
    if call is None:
        return ()
    data = {
        "call_id": call.call_id,
        "digit": obs.data["digit"],
        "duration_ms": obs.data.get("duration_ms"),
    }
    return (Emit(call_stream(call.call_id), "call.dtmf", data),)


def _playback_done(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """A prompt ran out, or a digit cut it (the engine stops it by itself then)."""
    call = state.calls.get(obs.data["call_id"])
    if call is None or call.playback_id != obs.data["playback_id"]:
        return ()  # already finished by a decision (stop, bridge, hold, hangup)
    data = {
        "call_id": call.call_id,
        "playback_id": call.playback_id,
        "interrupted": bool(obs.data.get("interrupted")),
    }
    for key in ("digit", "error"):
        if obs.data.get(key):
            data[key] = obs.data[key]
    finished = Emit(call_stream(call.call_id), "media.play.finished", data)
    if call.owner is None and call.playback_id == no_answer_tone_id(call.call_id):
        return (finished, *tone_over(state, call, ts))
    return (finished,)


def _timer(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """A timer armed by an earlier decision; stale ones (the call moved on) do nothing."""
    call = state.calls.get(obs.data["call_id"])
    if call is None:
        return ()
    kind = obs.data["kind"]
    if kind == "originate_timeout" and call.ending is not None:
        # SIP never said the leg we asked it to end is over: end it in the log anyway
        return tuple(hangup_events(state, call, ts, call.ending, None, "system"))
    if kind == "originate_timeout" and call.state in RINGING_OUT:
        events = [Emit(call_stream(call.call_id), "call.no_answer", {"call_id": call.call_id})]
        return tuple(events + hangup_events(state, call, ts, "no_answer", 487, "system"))
    unclaimed = call.owner is None and call.b2bua_peer is None
    if kind == "claim_timeout" and unclaimed and call.state in ANSWERABLE:
        return tuple(no_answer_action(state, call, ts, "no_answer", 480))
    if (
        kind == "orphan_timeout"
        and call.owner is None
        and call.orphaned_at == obs.data.get("since")
    ):
        return tuple(no_answer_action(state, call, ts, "timeout", None))
    return ()


def _effect_failed(state: State, obs: Observation, ts: str) -> tuple[Emit, ...]:
    """SIP or media could not do what a decision asked: the call cannot go on."""
    call = state.calls.get(obs.data["call_id"])
    if call is None:
        return ()
    reason = call.ending or "failed"
    return tuple(hangup_events(state, call, ts, reason, obs.data.get("sip_status"), "system"))


RULES: dict[str, Rule] = {
    "effect.failed": _effect_failed,
    "sip.call.offered": _offered,
    "sip.call.progress": _progress,
    "sip.call.answered": _answered,
    "sip.call.failed": _failed,
    "sip.call.ended": _ended,
    "sip.dtmf": _dtmf,
    "media.playback.finished": _playback_done,
}
#: ``timer.fired`` of a call's stream
TIMER = _timer
