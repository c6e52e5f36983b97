"""The RWI events a client receives and the fields of their ``data``.

The wire description of what ``rwi.domain`` emits: ``docs/asyncapi.yaml`` is generated
from it (with the action table in ``rwi.protocol``), and a test keeps its names equal to
the pushed events of ``rwi.domain.delivery``. Every event frame also carries, outside
``data``: ``rwi``, ``event``, ``seq``, ``ts`` and (for a call's event) ``call_id``;
``call.incoming`` also a top-level ``context``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_NUM: dict[str, Any] = {"type": "number"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_STATUS: dict[str, Any] = {"type": ["integer", "null"], "description": "SIP status code"}
_OBJ: dict[str, Any] = {"type": "object"}
_COUNT: dict[str, Any] = {"type": ["integer", "null"], "description": "20 ms frames"}


@dataclass(frozen=True)
class EventSpec:
    name: str
    summary: str
    fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required: frozenset[str] = frozenset()

    def data_schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "object",
            "properties": {name: dict(schema) for name, schema in self.fields.items()},
        }
        if self.required:
            out["required"] = sorted(self.required)
        return out


def _event(name: str, summary: str, required: str = "", /, **fields: dict[str, Any]) -> EventSpec:
    return EventSpec(name, summary, fields, frozenset(required.split()))


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


_HANGUP_REASONS = _enum(
    "caller", "callee", "rwi", "no_answer", "busy", "rejected", "canceled", "failed",
    "transfer", "timeout", "system", "rtp_timeout",
)  # fmt: skip
_PLAYBACK = {"playback_id": _STR}
_QUEUE = {"queue_id": _STR}
_SUPERVISOR = {
    "supervisor_call_id": _STR,
    "target_call_id": _STR,
    "mode": _enum("listen", "whisper", "barge", "takeover"),
}
_SUPERVISOR_REQUIRED = "supervisor_call_id target_call_id mode"
_MAYBE_STR: dict[str, Any] = {"type": ["string", "null"]}
#: a mode's start: the mode it switched from on the same agent, the agent's bridge peer
_MONITOR = {**_SUPERVISOR, "previous_mode": _MAYBE_STR, "customer_call_id": _MAYBE_STR}

EVENTS: dict[str, EventSpec] = {
    e.name: e
    for e in [
        _event(
            "call.incoming",
            "An inbound call is offered to the subscribers of its context.",
            "caller callee",
            caller=_STR,
            callee=_STR,
            direction=_enum("inbound"),
            trunk={"type": ["string", "null"]},
            headers={"type": "object", "additionalProperties": _STR},
        ),
        _event("call.ringing", "The call rings (first 180/183, or 180 sent).", sip_status=_STATUS),
        _event(
            "call.early_media", "The far end sends early media (183 with SDP).", sip_status=_STATUS
        ),
        _event("call.answered", "The call is answered."),
        _event(
            "call.busy", "The far end is busy (486/600); call.hangup follows.", sip_status=_STATUS
        ),
        _event("call.no_answer", "Nobody answered in time; call.hangup follows."),
        _event(
            "call.hangup",
            "The call ended; every call ends with exactly one.",
            "reason hangup_by",
            reason=_HANGUP_REASONS,
            sip_status=_STATUS,
            hangup_by=_enum("rwi", "remote", "system"),
            duration_secs=_NUM,
        ),
        _event("call.bridged", "Two legs are bridged.", "leg_a leg_b", leg_a=_STR, leg_b=_STR),
        _event(
            "call.unbridged",
            "A bridge ended; the call stays up.",
            "leg_a leg_b",
            leg_a=_STR,
            leg_b=_STR,
            reason=_STR,
        ),
        _event("call.dtmf", "A digit was received.", "digit", digit=_STR, duration_ms=_INT),
        _event(
            "call.transferred",
            "A transfer started.",
            "target method",
            target=_STR,
            method=_enum("refer", "bridge"),
            transfer_call_id=_STR,
        ),
        _event(
            "call.transfer.accepted",
            "The transfer target answered or accepted.",
            sip_status=_STATUS,
            transfer_call_id=_STR,
        ),
        _event(
            "call.transfer.failed",
            "The transfer or consultation failed; the call is restored.",
            sip_status=_STATUS,
            transfer_call_id=_STR,
            consultation_call_id=_STR,
            reason=_STR,
        ),
        _event(
            "media.play.started",
            "A playback started (prompt, ringback, hold music).",
            "playback_id",
            **_PLAYBACK,
            source=_OBJ,
            loop=_BOOL,
            interrupt_on_dtmf=_BOOL,
        ),
        _event(
            "media.play.finished",
            "A playback ended, or was interrupted.",
            "playback_id interrupted",
            **_PLAYBACK,
            interrupted=_BOOL,
            reason=_STR,
            digit=_STR,
            error=_STR,
        ),
        _event(
            "media.hold.started",
            "The call is held and hears music.",
            music={"type": ["string", "null"]},
        ),
        _event("media.hold.stopped", "The call is unheld."),
        _event(
            "media.ringback.passthrough.started",
            "The call hears another leg's early media.",
            "source_call_id",
            source_call_id=_STR,
        ),
        _event(
            "media.ringback.passthrough.stopped",
            "The early media pass-through ended.",
            "source_call_id",
            source_call_id=_STR,
            reason=_STR,
        ),
        _event(
            "record.started", "A recording started.", "recording_id", recording_id=_STR, path=_STR
        ),
        _event("record.paused", "A recording is paused.", "recording_id", recording_id=_STR),
        _event("record.resumed", "A recording goes on.", "recording_id", recording_id=_STR),
        _event(
            "record.stopped",
            "A recording ended.",
            "recording_id",
            recording_id=_STR,
            duration_secs=_NUM,
            paused_secs=_NUM,
            path=_STR,
            size_bytes=_INT,
            reason=_enum("rwi", "hangup", "max_duration", "system"),
        ),
        _event(
            "record.failed", "A recording failed.", "recording_id", recording_id=_STR, reason=_STR
        ),
        _event(
            "media.stream.started",
            "The stream's WebSocket is open: the call's audio flows to the bot.",
            "stream_id",
            stream_id=_STR,
            url=_STR,
            mode=_enum("listen", "duplex"),
        ),
        _event(
            "media.stream.mark",
            "Everything the bot queued before its mark has been played (or cleared).",
            "stream_id name",
            stream_id=_STR,
            name=_STR,
        ),
        _event(
            "media.stream.stopped",
            "The stream ended; counts are null when a restart cut it.",
            "stream_id reason",
            stream_id=_STR,
            reason=_enum("rwi", "hangup", "remote_closed", "failed"),
            frames_sent=_COUNT,
            frames_received=_COUNT,
            frames_dropped=_COUNT,
            error=_STR,
        ),
        _event("queue.joined", "The call waits in a queue.", "queue_id", **_QUEUE, position=_INT),
        _event("queue.position_changed", "The call's place moved.", **_QUEUE, position=_INT),
        _event("queue.hold", "The queue entry is held.", **_QUEUE),
        _event("queue.unhold", "The queue entry is unheld.", **_QUEUE),
        _event(
            "queue.agent_offered",
            "An agent is dialled for the call.",
            **_QUEUE,
            agent_id=_STR,
            agent_call_id=_STR,
        ),
        _event(
            "queue.agent_connected",
            "The agent answered and is bridged.",
            **_QUEUE,
            agent_id=_STR,
            agent_call_id=_STR,
        ),
        _event(
            "queue.agent_no_answer",
            "The agent offered the call did not take it (no answer, busy, rejected).",
            **_QUEUE,
            agent_id=_STR,
            agent_call_id=_STR,
            reason=_STR,
            sip_status=_STATUS,
        ),
        _event("queue.wait_timeout", "max_wait_secs elapsed.", **_QUEUE),
        _event(
            "agent.state_changed",
            "An agent moved between available, ringing, busy, wrap_up, paused, logged_out.",
            "agent_id",
            agent_id=_STR,
            state=_enum("logged_out", "available", "ringing", "busy", "wrap_up", "paused"),
            reason=_STR,
        ),
        _event("queue.left", "The call left the queue.", "reason", **_QUEUE, reason=_STR),
        _event(
            "supervisor.listen.started",
            "A supervisor listens: it hears the agent and what the agent hears.",
            _SUPERVISOR_REQUIRED,
            **_MONITOR,
        ),
        _event(
            "supervisor.whisper.started",
            "A supervisor whispers: the agent (only) hears it too.",
            _SUPERVISOR_REQUIRED,
            **_MONITOR,
        ),
        _event(
            "supervisor.barge.started",
            "A supervisor barges in: the agent and whoever hears the agent hear it.",
            _SUPERVISOR_REQUIRED,
            **_MONITOR,
        ),
        _event(
            "supervisor.takeover.started",
            "The supervisor took the agent's customer: bridged with it, the agent leg hung up.",
            _SUPERVISOR_REQUIRED,
            **_SUPERVISOR,
            customer_call_id=_STR,
        ),
        _event(
            "supervisor.mode.stopped",
            "Supervision ended; the supervisor leg stays up.",
            _SUPERVISOR_REQUIRED + " reason",
            **_SUPERVISOR,
            reason=_enum(
                "rwi", "moved", "takeover", "target_ended", "supervisor_ended", "failed", "system"
            ),
        ),
        _event(
            "sip.message.received",
            "A SIP MESSAGE arrived: in a call's dialog (top-level call_id), or out of dialog"
            " routed to a context (top-level context; data from, to).",
            content_type=_STR,
            body=_STR,
            **{"from": _STR, "to": _STR},
        ),
        _event("conference.created", "A conference was created.", conf_id=_STR, max_members=_INT),
        _event(
            "conference.member_joined", "A call joined the conference.", conf_id=_STR, members=_INT
        ),
        _event(
            "conference.member_left",
            "A call left the conference.",
            conf_id=_STR,
            reason=_enum("removed", "hangup", "destroyed"),
            members=_INT,
        ),
        _event("conference.member_muted", "A member is muted.", conf_id=_STR),
        _event("conference.member_unmuted", "A member is unmuted.", conf_id=_STR),
        _event("conference.destroyed", "The conference ended; its calls stay up.", conf_id=_STR),
        _event(
            "sip.info.received",
            "An in-dialog SIP INFO other than DTMF arrived.",
            content_type=_STR,
            body=_STR,
        ),
        _event(
            "sip.notify.received",
            "An in-dialog SIP NOTIFY arrived.",
            event=_STR,
            content_type=_STR,
            body=_STR,
        ),
    ]
}
