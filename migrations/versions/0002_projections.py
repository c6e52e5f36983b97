"""Projections: call history tables, their checkpoints, the call-reference index, reports.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26

Everything here is derived from the event log and can be dropped and rebuilt from it
(``rwi rebuild``). The only change to the log's own table is one partial GIN index:
``rwi_call_refs`` lists the calls an event mentions *besides its own stream's call*
(a command's ``params.call_id``/``leg_a``/``leg_b``..., an observation's ``call_id``,
the other leg of ``call.bridged``). Events that mention no other call (most of the
log) are not in the index at all, so appends of ordinary call events pay nothing.
A call's whole story is then ``stream_id = 'call:<id>'`` (the unique stream index)
plus ``rwi_call_refs(...) @> ARRAY[<id>]`` (this index).
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: Keys whose string values name a call; commands carry them in ``params``. The same
#: list is in ``rwi.projections.refs.CALL_REF_KEYS`` (a test keeps the two equal).
CALL_REF_KEYS = (
    "call_id",
    "leg_a",
    "leg_b",
    "other_call_id",
    "consultation_call_id",
    "target_call_id",
    "supervisor_call_id",
    "source_call_id",
    "agent_call_id",
)

FUNCTIONS = [
    # One plain expression per key (inlinable, ~1 us per event): values are cut to 200
    # characters, so a hostile frame's 60 KiB "call_id" can never make an append fail
    # on the index's key size limit (real call ids are at most 128 characters).
    """
    CREATE FUNCTION rwi_call_refs(stream_id text, type text, data jsonb) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT NULLIF(
        array_remove(array_remove(array_remove(
          CASE WHEN type = 'rwi.command' THEN ARRAY[{params}] ELSE ARRAY[{top}] END,
          NULL), ''), CASE WHEN stream_id LIKE 'call:%' THEN substr(stream_id, 6) ELSE '' END),
        '{{}}')
    $$
    """.format(
        params=", ".join(f"left(data #>> '{{params,{k}}}', 200)" for k in CALL_REF_KEYS),
        top=", ".join(f"left(data ->> '{k}', 200)" for k in CALL_REF_KEYS),
    ),
    # The wire's timestamps (meta.ts, "...T...Z") as timestamptz, NULL when malformed:
    # never an error, one bad event must not stop a projection. (The exception block is
    # cheaper here than any validating expression.)
    """
    CREATE FUNCTION rwi_ts(t text) RETURNS timestamptz
    LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
    BEGIN
      IF t IS NULL OR substr(t, 11, 1) <> 'T' OR right(t, 1) <> 'Z' THEN
        RETURN NULL;
      END IF;
      RETURN t::timestamptz;
    EXCEPTION WHEN data_exception THEN
      RETURN NULL;
    END
    $$
    """,
]

TABLES = [
    """
    CREATE TABLE projection_checkpoints (
        name text PRIMARY KEY,
        position bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        rebuilt_at timestamptz
    )
    """,
    "INSERT INTO projection_checkpoints (name, position) VALUES ('calls', 0), ('rwi_commands', 0)",
    """
    CREATE TABLE calls (
        call_id text NOT NULL,
        leg_seq bigint NOT NULL,
        direction text,
        caller text,
        callee text,
        context text,
        trunk text,
        owner_token text,
        state text NOT NULL,
        created_at timestamptz,
        answered_at timestamptz,
        ended_at timestamptz,
        ring_secs numeric GENERATED ALWAYS AS
            (round(extract(epoch FROM coalesce(answered_at, ended_at) - created_at), 3)) STORED,
        talk_secs numeric GENERATED ALWAYS AS
            (round(extract(epoch FROM ended_at - answered_at), 3)) STORED,
        hangup_reason text,
        sip_status integer,
        hangup_by text,
        bridged_with text,
        transfer_chain text[] NOT NULL DEFAULT '{}',
        queue_id text,
        agent_id text,
        recording_ids text[] NOT NULL DEFAULT '{}',
        hold_count integer NOT NULL DEFAULT 0,
        last_seq bigint NOT NULL,
        PRIMARY KEY (call_id, leg_seq)
    )
    """,
    "CREATE INDEX calls_created_at ON calls (created_at)",
    "CREATE INDEX calls_agent_id ON calls (agent_id) WHERE agent_id IS NOT NULL",
    """
    CREATE TABLE call_segments (
        call_id text NOT NULL,
        leg_seq bigint NOT NULL,
        kind text NOT NULL,
        other_call_id text,
        detail text,
        started_at timestamptz,
        ended_at timestamptz,
        duration_secs numeric GENERATED ALWAYS AS
            (round(extract(epoch FROM ended_at - started_at), 3)) STORED,
        started_seq bigint NOT NULL,
        ended_seq bigint,
        PRIMARY KEY (call_id, started_seq, kind)
    )
    """,
    "CREATE INDEX call_segments_kind ON call_segments (kind, started_at)",
    """
    CREATE TABLE recordings (
        recording_id text NOT NULL,
        call_id text NOT NULL,
        leg_seq bigint NOT NULL,
        mode text,
        path text,
        state text NOT NULL,
        started_at timestamptz,
        stopped_at timestamptz,
        duration_secs numeric,
        paused_secs numeric NOT NULL DEFAULT 0,
        paused_intervals jsonb NOT NULL DEFAULT '[]',
        error text,
        started_seq bigint NOT NULL,
        stopped_seq bigint,
        PRIMARY KEY (call_id, started_seq)
    )
    """,
    "CREATE INDEX recordings_recording_id ON recordings (recording_id)",
    """
    CREATE TABLE queue_entries (
        call_id text NOT NULL,
        leg_seq bigint NOT NULL,
        queue_id text,
        priority integer,
        position integer,
        joined_at timestamptz,
        connected_at timestamptz,
        left_at timestamptz,
        wait_secs numeric GENERATED ALWAYS AS
            (round(extract(epoch FROM coalesce(connected_at, left_at) - joined_at), 3)) STORED,
        left_reason text,
        agent_id text,
        agent_call_id text,
        joined_seq bigint NOT NULL,
        left_seq bigint,
        PRIMARY KEY (call_id, joined_seq)
    )
    """,
    "CREATE INDEX queue_entries_queue ON queue_entries (queue_id, joined_at)",
    """
    CREATE TABLE rwi_commands (
        seq bigint PRIMARY KEY,
        connection_id text,
        token text,
        action text,
        action_id text,
        call_id text,
        params jsonb,
        response text,
        error_code text,
        idempotency_key text,
        replayed boolean NOT NULL,
        received_at timestamptz,
        recorded_at timestamptz NOT NULL,
        latency_ms numeric GENERATED ALWAYS AS
            (round(extract(epoch FROM recorded_at - received_at) * 1000, 3)) STORED
    )
    """,
    "CREATE INDEX rwi_commands_call_id ON rwi_commands (call_id) WHERE call_id IS NOT NULL",
    "CREATE INDEX rwi_commands_received_at ON rwi_commands (received_at)",
]

INDEXES = [
    """
    CREATE INDEX events_call_refs ON events
     USING gin (rwi_call_refs(stream_id, type, data)) WITH (fastupdate = off)
     WHERE rwi_call_refs(stream_id, type, data) IS NOT NULL
    """,
    "CREATE INDEX events_service_started ON events (seq) WHERE type = 'service.started'",
]

# The questions a contact centre asks, as views over the projection tables
# (docs/reporting.md explains each one with example queries).
VIEWS = [
    """
    CREATE VIEW call_outcomes AS
    SELECT c.*,
           CASE
             WHEN c.ended_at IS NULL THEN 'in_progress'
             WHEN c.answered_at IS NOT NULL THEN 'answered'
             WHEN c.hangup_reason = 'busy' THEN 'busy'
             WHEN c.hangup_reason IN ('no_answer', 'timeout') THEN 'no_answer'
             WHEN c.hangup_reason = 'rejected' THEN 'rejected'
             WHEN c.direction = 'inbound' AND c.hangup_reason IN ('caller', 'canceled')
               THEN 'abandoned'
             WHEN c.hangup_reason = 'canceled' THEN 'canceled'
             ELSE 'failed'
           END AS outcome
      FROM calls c
    """,
    """
    CREATE VIEW report_calls_per_hour AS
    SELECT date_trunc('hour', created_at) AS hour,
           direction,
           outcome,
           count(*) AS calls,
           round(avg(ring_secs), 3) AS avg_ring_secs,
           round(avg(talk_secs), 3) AS avg_talk_secs,
           round(coalesce(sum(talk_secs), 0), 3) AS talk_secs
      FROM call_outcomes
     GROUP BY 1, 2, 3
    """,
    """
    CREATE VIEW report_speed_of_answer AS
    SELECT date_trunc('hour', joined_at) AS hour,
           'queue'::text AS via,
           queue_id AS name,
           count(*) AS answered,
           round(avg(wait_secs), 3) AS asa_secs,
           max(wait_secs) AS max_secs
      FROM queue_entries
     WHERE connected_at IS NOT NULL
     GROUP BY 1, 3
    UNION ALL
    SELECT date_trunc('hour', created_at), 'context', context,
           count(*), round(avg(ring_secs), 3), max(ring_secs)
      FROM calls
     WHERE direction = 'inbound' AND answered_at IS NOT NULL
     GROUP BY 1, 3
    """,
    """
    CREATE VIEW report_abandonment AS
    SELECT date_trunc('hour', joined_at) AS hour,
           'queue'::text AS via,
           queue_id AS name,
           count(*) AS offered,
           count(*) FILTER (WHERE connected_at IS NOT NULL) AS answered,
           count(*) FILTER (WHERE connected_at IS NULL AND left_at IS NOT NULL
                              AND left_reason NOT IN ('dequeued', 'timeout', 'transferred'))
             AS abandoned,
           round(count(*) FILTER (WHERE connected_at IS NULL AND left_at IS NOT NULL
                                    AND left_reason NOT IN ('dequeued', 'timeout',
                                                            'transferred'))::numeric
                 / count(*), 4) AS abandonment_rate
      FROM queue_entries
     GROUP BY 1, 3
    UNION ALL
    SELECT date_trunc('hour', created_at), 'context', context,
           count(*),
           count(*) FILTER (WHERE outcome = 'answered'),
           count(*) FILTER (WHERE outcome = 'abandoned'),
           round(count(*) FILTER (WHERE outcome = 'abandoned')::numeric / count(*), 4)
      FROM call_outcomes
     WHERE direction = 'inbound'
     GROUP BY 1, 3
    """,
    """
    CREATE VIEW report_agent_talk_time AS
    SELECT date_trunc('day', q.connected_at) AS day,
           q.agent_id,
           count(*) AS calls,
           round(coalesce(sum(extract(epoch FROM c.ended_at - q.connected_at)), 0), 3)
             AS talk_secs,
           round(avg(extract(epoch FROM c.ended_at - q.connected_at)), 3) AS avg_talk_secs
      FROM queue_entries q
      JOIN calls c ON c.call_id = q.call_id AND c.leg_seq = q.leg_seq
     WHERE q.agent_id IS NOT NULL AND q.connected_at IS NOT NULL
     GROUP BY 1, 2
    """,
    """
    CREATE VIEW report_longest_holds AS
    SELECT s.started_at,
           s.call_id,
           c.caller,
           c.callee,
           c.agent_id,
           s.duration_secs AS hold_secs,
           s.detail AS music
      FROM call_segments s
      JOIN calls c ON c.call_id = s.call_id AND c.leg_seq = s.leg_seq
     WHERE s.kind = 'hold' AND s.ended_at IS NOT NULL
    """,
]


def upgrade() -> None:
    for statement in FUNCTIONS + TABLES + INDEXES + VIEWS:
        op.execute(statement)


def downgrade() -> None:
    for view in (
        "report_longest_holds",
        "report_agent_talk_time",
        "report_abandonment",
        "report_speed_of_answer",
        "report_calls_per_hour",
        "call_outcomes",
    ):
        op.execute(f"DROP VIEW IF EXISTS {view}")
    op.execute("DROP INDEX IF EXISTS events_service_started")
    op.execute("DROP INDEX IF EXISTS events_call_refs")
    for table in (
        "rwi_commands",
        "queue_entries",
        "recordings",
        "call_segments",
        "calls",
        "projection_checkpoints",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    for function in ("rwi_ts(text)", "rwi_call_refs(text, text, jsonb)"):
        op.execute(f"DROP FUNCTION IF EXISTS {function}")
