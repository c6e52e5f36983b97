"""What call decisions share: finding a call, ownership and claims (contract §4), and the
events that end a call or stop what it hears.

Used by the call commands and observation rules, and by other features that end or
re-route calls (transfers).
"""

from __future__ import annotations

import re
from datetime import datetime

from rwi.domain.call import ANSWERABLE, CallState
from rwi.domain.model import Command, Emit, State, call_stream
from rwi.errors import RwiError

DESTINATION = re.compile(r"^(sips?|tel):[^\s<>]+$", re.IGNORECASE)


def seconds_between(start: str | None, end: str) -> float:
    """Whole-millisecond seconds between two of the wire's ISO timestamps (0 if unknown)."""
    if not start:
        return 0.0
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(max(delta.total_seconds(), 0.0), 3)


def not_found(call_id: str) -> RwiError:
    return RwiError("call_not_found", f"call {call_id!r} is not an active call")


def get_call(state: State, call_id: str) -> CallState:
    call = state.calls.get(call_id)
    if call is None:
        raise not_found(call_id)
    return call


def owned(state: State, command: Command, call_id: str) -> CallState:
    """The call, if this connection controls it."""
    call = get_call(state, call_id)
    if call.owner == command.connection_id:
        return call
    if call.owner is not None:
        raise RwiError("already_owned", f"call {call_id!r} is owned by another connection")
    if call.orphaned_at is not None:
        raise RwiError(
            "invalid_state",
            f"call {call_id!r} has lost its owner: take it with session.attach_call first",
        )
    raise RwiError(
        "invalid_state",
        f"call {call_id!r} is not claimed yet: claim it with call.answer, call.reject or call.ring",
    )


def claim(
    state: State, command: Command, call_id: str, action: str
) -> tuple[CallState, list[Emit]]:
    """First answer/reject/ring on an offered call claims it (claims are serialised)."""
    call = get_call(state, call_id)
    if call.owner == command.connection_id:
        return call, []
    if call.owner is not None:
        raise RwiError("already_owned", f"call {call_id!r} is owned by another connection")
    session = state.sessions.get(command.connection_id)
    offered_here = session is not None and call.context in session.contexts
    if call.b2bua_peer is not None or call.playback_id == no_answer_tone_id(call_id):
        if not offered_here:
            raise not_found(call_id)
        raise RwiError(
            "invalid_state",
            f"call {call_id!r} was not claimed in time: its context's no-answer action has it",
        )
    if call.direction != "inbound" or call.state not in ANSWERABLE:
        return owned(state, command, call_id), []
    if not offered_here:
        # Not offered to this connection: it is not to know the call exists.
        raise not_found(call_id)
    event = Emit(
        call_stream(call_id),
        "call.claimed",
        {"call_id": call_id, "connection_id": command.connection_id, "action": action},
    )
    return call, [event]


def hold_music_id(call_id: str) -> str:
    return f"hm-{call_id}"


def ringback_id(call_id: str) -> str:
    return f"rb-{call_id}"


def no_answer_tone_id(call_id: str) -> str:
    return f"na-{call_id}"


def release_links(state: State, call: CallState, reason: str) -> list[Emit]:
    """Stop what an outbound leg made other legs hear while it rang (hold music,
    local ringback, its early media), once it is answered or gone."""
    events: list[Emit] = []
    for target_id, playback in (
        (call.hold_target, hold_music_id(call.call_id)),
        (call.ringback_target, ringback_id(call.call_id)),
    ):
        target = state.calls.get(target_id) if target_id else None
        if target is not None and target.playback_id == playback:
            events.append(
                Emit(
                    call_stream(target.call_id),
                    "media.play.finished",
                    {
                        "call_id": target.call_id,
                        "playback_id": playback,
                        "interrupted": True,
                        "reason": reason,
                    },
                )
            )
    for target_id in sorted(call.passthrough_to):
        target = state.calls.get(target_id)
        if target is not None and target.passthrough_from == call.call_id:
            events.append(
                Emit(
                    call_stream(target.call_id),
                    "media.ringback.passthrough.stopped",
                    {"call_id": target.call_id, "source_call_id": call.call_id, "reason": reason},
                )
            )
    return events


def hangup_events(
    state: State, call: CallState, ts: str, reason: str, sip_status: int | None, by: str
) -> list[Emit]:
    """call.hangup for ``call``, call.unbridged for the peer it leaves behind; the two
    legs of a plain B2BUA call (no owner to decide otherwise) end together."""
    events = release_links(state, call, "ended")
    peer = state.calls.get(call.b2bua_peer) if call.b2bua_peer else None
    if call.bridged_with is not None and call.bridged_with in state.calls and peer is None:
        other = call.bridged_with
        events.append(
            Emit(
                call_stream(other),
                "call.unbridged",
                {"call_id": other, "leg_a": call.call_id, "leg_b": other, "reason": "hangup"},
            )
        )
    events.append(_hangup(call, ts, reason, sip_status, by))
    if peer is not None:
        # an unanswered caller gets the callee's final status (busy stays busy)
        status = sip_status if peer.answered_at is None and sip_status else None
        if peer.answered_at is None and status is None:
            status = 480
        events.append(_hangup(peer, ts, reason, status, "system"))
    return events


def ending_events(state: State, call: CallState, reason: str) -> list[Emit]:
    """End an unanswered outbound leg by SIP's account: ``call.ending`` (not pushed)
    has SIP end it now (CANCEL, or BYE if its answer is already in), and its
    ``call.hangup {reason, hangup_by: system}`` is decided from SIP's report, so its
    ``sip_status`` says what happened on the wire: 487 when the CANCEL ended the
    INVITE, 200 when the far end's answer crossed the CANCEL and was ACKed and BYEd.
    For offers withdrawn from agents, whose answers may cross at any moment."""
    if call.ending is not None:
        return []
    ending = Emit(call_stream(call.call_id), "call.ending", {"call_id": call.call_id,
                                                              "reason": reason})  # fmt: skip
    return [*release_links(state, call, "ended"), ending]


def _hangup(call: CallState, ts: str, reason: str, sip_status: int | None, by: str) -> Emit:
    return Emit(
        call_stream(call.call_id),
        "call.hangup",
        {
            "call_id": call.call_id,
            "reason": reason,
            "sip_status": sip_status,
            "hangup_by": by,
            "duration_secs": seconds_between(call.answered_at, ts),
        },
    )


def stop_playback(call: CallState, reason: str) -> list[Emit]:
    if call.playback_id is None:
        return []
    return [
        Emit(
            call_stream(call.call_id),
            "media.play.finished",
            {
                "call_id": call.call_id,
                "playback_id": call.playback_id,
                "interrupted": True,
                "reason": reason,
            },
        )
    ]


def restart_events(state: State, ts: str) -> list[Emit]:
    """Calls never survive a restart (their SIP dialogs and media legs lived in the old
    process): each live call ends in the log, so history and clients agree."""
    ended: list[Emit] = []
    gone: set[str] = set()
    for call in list(state.calls.values()):
        if call.call_id in gone:
            continue  # the other leg of a plain B2BUA call ends with its peer
        events = hangup_events(state, call, ts, "system", None, "system")
        gone.update(e.data["call_id"] for e in events if e.type == "call.hangup")
        ended += events
    return ended
