"""The projection tables' columns as the projections write them (migrations own the DDL).

Generated columns (durations, latencies) are computed by PostgreSQL and never written.
"""

from __future__ import annotations

from typing import Final

COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "calls": (
        "call_id",
        "leg_seq",
        "direction",
        "caller",
        "callee",
        "context",
        "trunk",
        "owner_token",
        "state",
        "created_at",
        "answered_at",
        "ended_at",
        "hangup_reason",
        "sip_status",
        "hangup_by",
        "bridged_with",
        "transfer_chain",
        "queue_id",
        "agent_id",
        "recording_ids",
        "hold_count",
        "last_seq",
    ),
    "call_segments": (
        "call_id",
        "leg_seq",
        "kind",
        "other_call_id",
        "detail",
        "started_at",
        "ended_at",
        "started_seq",
        "ended_seq",
    ),
    "recordings": (
        "recording_id",
        "call_id",
        "leg_seq",
        "mode",
        "path",
        "state",
        "started_at",
        "stopped_at",
        "duration_secs",
        "paused_secs",
        "paused_intervals",
        "error",
        "started_seq",
        "stopped_seq",
        "reason",
    ),
    "queue_entries": (
        "call_id",
        "leg_seq",
        "queue_id",
        "priority",
        "position",
        "joined_at",
        "connected_at",
        "left_at",
        "left_reason",
        "agent_id",
        "agent_call_id",
        "joined_seq",
        "left_seq",
    ),
    "rwi_commands": (
        "seq",
        "connection_id",
        "token",
        "action",
        "action_id",
        "call_id",
        "params",
        "response",
        "error_code",
        "idempotency_key",
        "replayed",
        "received_at",
        "recorded_at",
    ),
}

#: Each table's key: the order rows are compared and listed in.
KEYS: Final[dict[str, tuple[str, ...]]] = {
    "calls": ("call_id", "leg_seq"),
    "call_segments": ("call_id", "started_seq", "kind"),
    "recordings": ("call_id", "started_seq"),
    "queue_entries": ("call_id", "joined_seq"),
    "rwi_commands": ("seq",),
}
