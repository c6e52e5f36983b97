"""Which events the call-history fold reads, and which of their fields (one table).

The fold never parses event JSON in Python: PostgreSQL extracts, per event type, up to
``SLOTS`` fields (``data ->> key``, ``data #>> path``) into text columns, and the fold
reads them by position. This module is the single place that says which field sits in which slot;
the SQL is generated from it, so the fold and the query cannot drift apart.

An input row is ``(seq, type, ts, own, s0, s1, ... s6)``: ``ts`` is ``meta.ts``, ``own``
the call id of the event's stream (``call:<id>``), ``s0``.. the slots.
"""

from __future__ import annotations

from typing import Final

SLOTS: Final = 7
#: Position of the first slot in an input row.
S: Final = 4

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
    "record.stopped": ("recording_id", "duration_secs", "path", "reason"),
    "record.failed": ("recording_id", "error"),
    "queue.joined": ("queue_id", "position", "priority", "call_id", "since"),
    "queue.agent_connected": ("queue_id", "agent_id", "agent_call_id", "call_id"),
    "queue.left": ("queue_id", "reason", "call_id"),
    "supervisor.listen.started": ("supervisor_call_id", "target_call_id", "call_id"),
    "supervisor.whisper.started": ("supervisor_call_id", "target_call_id", "call_id"),
    "supervisor.barge.started": ("supervisor_call_id", "target_call_id", "call_id"),
    "supervisor.mode.stopped": ("supervisor_call_id", "target_call_id", "call_id"),
    "rwi.command": (
        "params.call_id",
        "action",
        "connection_id",
        "token",
        "outcome.response",
        "params.target",
        "outcome.data.consultation_call_id",
    ),
}

#: Event types applied to other calls than their stream's: type -> the slots naming them.
#: Every such slot is a key ``rwi_call_refs`` indexes, so a call's story as read through
#: the index holds every event the fold applies to it.
CROSS: Final[dict[str, tuple[int, ...]]] = {
    "call.bridged": (S, S + 1),
    "call.unbridged": (S, S + 1),
    "supervisor.listen.started": (S, S + 1, S + 2),
    "supervisor.whisper.started": (S, S + 1, S + 2),
    "supervisor.barge.started": (S, S + 1, S + 2),
    "supervisor.mode.stopped": (S, S + 1, S + 2),
    "rwi.command": (S,),
    # logged on the queue's stream (``queue:<id>``), about the queued call
    "queue.joined": (S + 3,),
    "queue.agent_connected": (S + 3,),
    "queue.left": (S + 2,),
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

#: Longest call id followed across events (``rwi_call_refs`` keeps 200 characters).
MAX_REF = 200

assert all(len(paths) <= SLOTS for paths in FIELDS.values())


def _path(path: str) -> str:
    parts = path.split(".")
    if len(parts) == 1:
        return f"e.data->>'{path}'"
    return "e.data#>>'{" + ",".join(parts) + "}'"


def _select() -> str:
    whens = " ".join(
        f"WHEN '{etype}' THEN ARRAY[{', '.join(_path(p) for p in paths) or 'NULL'}]::text[]"
        for etype, paths in FIELDS.items()
    )
    types = ", ".join(f"'{t}'" for t in FIELDS)
    actions = ", ".join(f"'{a}'" for a in COMMANDS)
    slots = ", ".join(f"s[{i + 1}]" for i in range(SLOTS))
    return (
        f"SELECT seq, type, ts, own, {slots} FROM ("
        "SELECT e.seq, e.type, e.meta->>'ts' AS ts, "
        "CASE WHEN e.stream_id LIKE 'call:%' THEN substr(e.stream_id, 6) END AS own, "
        f"CASE e.type {whens} END AS s "
        f"FROM events e WHERE e.type IN ({types}) "
        f"AND (e.type <> 'rwi.command' OR e.data->>'action' IN ({actions}))"
    )


#: The fold's input rows: append ``AND <conditions on e>``, ``ORDER BY e.seq``, ``) AS r``.
SELECT: Final = _select()
