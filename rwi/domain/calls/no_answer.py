"""A context's no-answer action (contract §4), decided purely.

Applied when an offered call is not claimed within ``no_answer_timeout_secs``, and when
an orphaned call is not re-attached within ``orphan_hold_secs``:

- ``hangup``: the call ends (480 to an unanswered caller).
- ``transfer``: ``no_answer_transfer_target`` is dialled as ``<call_id>-t`` and the call
  becomes a plain B2BUA call with it (no owner): the caller hears it ring, is answered
  and bridged when it answers, gets its final status if it does not; both end together.
- ``play_tone``: the call is answered, hears ``no_answer_tone_hz`` for
  ``no_answer_tone_secs``, then ends.

A call already bridged, or an outbound call still ringing, is hung up whatever the action.
"""

from __future__ import annotations

from typing import Any

from rwi.domain.call import CallState, CallStatus
from rwi.domain.calls.legs import hangup_events, no_answer_tone_id, stop_playback
from rwi.domain.model import Emit, State, call_stream


def no_answer_action(
    state: State, call: CallState, ts: str, reason: str, sip_status: int | None
) -> list[Emit]:
    policy = state.policy.context(call.context)
    offered = call.direction == "inbound" and call.answered_at is None
    available = call.bridged_with is None and (offered or call.state is CallStatus.ANSWERED)
    if available and policy.no_answer_action == "transfer" and policy.no_answer_transfer_target:
        leg_id = f"{call.call_id}-t"
        if leg_id not in state.calls:
            originated: dict[str, Any] = {
                "call_id": leg_id,
                "owner": None,
                "token": None,
                "destination": policy.no_answer_transfer_target,
                "caller_id": call.caller or None,
                "timeout_secs": 60,
                "context": None,
                "extra_headers": {},
                "ringback": "none",
                "b2bua_peer": call.call_id,
            }
            return [
                *stop_playback(call, "replaced"),
                Emit(call_stream(leg_id), "call.originated", originated),
            ]
    if available and policy.no_answer_action == "play_tone":
        events: list[Emit] = []
        if offered:
            events.append(
                Emit(call_stream(call.call_id), "call.answered", {"call_id": call.call_id})
            )
        events += stop_playback(call, "replaced")
        source = {
            "type": "tone",
            "frequency": policy.no_answer_tone_hz,
            "duration_ms": int(policy.no_answer_tone_secs * 1000),
        }
        events.append(
            Emit(
                call_stream(call.call_id),
                "media.play.started",
                {
                    "call_id": call.call_id,
                    "playback_id": no_answer_tone_id(call.call_id),
                    "source": source,
                    "loop": False,
                    "interrupt_on_dtmf": False,
                },
            )
        )
        return events
    return hangup_events(state, call, ts, reason, sip_status, "system")


def tone_over(state: State, call: CallState, ts: str) -> list[Emit]:
    """The no-answer tone has played: the call ends."""
    reason = "timeout" if call.orphaned_at is not None else "no_answer"
    return hangup_events(state, call, ts, reason, None, "system")
