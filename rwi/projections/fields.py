"""Which events the call-history fold reads, and which of their fields (one table).

The fold never parses event JSON in Python: PostgreSQL extracts, per event type, up to
``SLOTS`` fields into text columns (``a`` .. ``f``), and the fold reads them by
position. This module is the single place that says which field sits in which slot;
the SQL is generated from it, so the fold and the query cannot drift apart.
"""

from __future__ import annotations

from typing import Final

SLOTS: Final = 6

#: Event type -> JSON paths (dotted, from ``data``) of the slots the fold reads.
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "call.incoming": ("caller", "callee", "context", "trunk", "direction"),
    "call.originated": ("destination", "caller_id", "context", "token", "owner", "trunk"),
    "call.claimed": ("connection_id",),
    "call.attached": ("connection_id", "mode"),
    "call.ringing": (),
    "call.early_media": (),
    "call.answered": (),
    "call.busy": ("sip_status",),
    "call.no_answer": (),
    "call.hangup": ("reason", "sip_status", "hangup_by"),
    "call.bridged": ("leg_a", "leg_b"),
    "call.unbridged": ("leg_a", "leg_b"),
    "call.transferred": ("target",),
    "call.transfer.accepted": (),
    "call.transfer.failed": ("sip_status",),
    "media.hold.started": ("music",),
    "media.hold.stopped": (),
    "record.started": ("recording_id", "mode", "path"),
    "record.paused": ("recording_id",),
    "record.resumed": ("recording_id",),
    "record.stopped": ("recording_id", "duration_secs", "path"),
    "record.failed": ("recording_id", "error"),
    "queue.joined": ("queue_id", "position", "priority"),
    "queue.agent_connected": ("queue_id", "agent_id", "agent_call_id"),
    "queue.left": ("queue_id", "reason"),
    "supervisor.listen.started": ("supervisor_call_id", "target_call_id", "call_id"),
    "supervisor.whisper.started": ("supervisor_call_id", "target_call_id", "call_id"),
    "supervisor.barge.started": ("supervisor_call_id", "target_call_id", "call_id"),
    "supervisor.mode.stopped": ("supervisor_call_id", "target_call_id", "call_id"),
    "rwi.command": (
        "action",
        "connection_id",
        "token",
        "outcome.response",
        "params.target",
        "outcome.data.consultation_call_id",
    ),
}

#: Commands whose records the fold reads (the rest of ``rwi.command`` is skipped in SQL).
COMMANDS: Final = (
    "call.originate",
    "call.answer",
    "call.reject",
    "call.ring",
    "session.attach_call",
    "call.transfer.attended",
    "call.transfer.complete",
    "call.transfer.cancel",
)

assert all(len(paths) <= SLOTS for paths in FIELDS.values())


def _path(path: str) -> str:
    return "'{" + ",".join(path.split(".")) + "}'"


def slot_sql(slot: int) -> str:
    """``CASE type WHEN ... THEN data #>> path ... END`` for one slot."""
    cases = [
        f"WHEN '{etype}' THEN data #>> {_path(paths[slot])}"
        for etype, paths in FIELDS.items()
        if len(paths) > slot
    ]
    return "CASE type " + " ".join(cases) + " END"


def event_filter_sql() -> str:
    """The WHERE condition selecting exactly the events the fold reads."""
    types = ", ".join(f"'{t}'" for t in FIELDS if t != "rwi.command")
    actions = ", ".join(f"'{a}'" for a in COMMANDS)
    return f"(type IN ({types}) OR (type = 'rwi.command' AND data->>'action' IN ({actions})))"


#: The columns of a fold input row, in order.
INPUT_COLUMNS: Final = (
    "seq, type, meta->>'ts' AS ts, "
    "CASE WHEN stream_id LIKE 'call:%' THEN substr(stream_id, 6) END AS own, "
    "rwi_call_refs(stream_id, type, data) AS refs, "
    + ", ".join(f"{slot_sql(i)} AS {'abcdef'[i]}" for i in range(SLOTS))
)
