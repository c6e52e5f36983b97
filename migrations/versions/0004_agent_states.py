"""Agent state intervals and the queue reports: ``agent_states``, ``report_agent_states``,
``report_queue_summary(sla_secs)``.

Revision ID: 0004_agent_states
Revises: 0003_recordings
Create Date: 2026-12-08

``agent_states`` holds one row per interval an agent spent in one state, folded from
``agent.state_changed`` (``rwi.projections.agent_states``); the interval still going
has no end. ``report_queue_summary`` is a function, not a view: its service level is
the share of offered entries answered within ``sla_secs`` (``rwi report queue_summary
--sla-secs N``). Entries that left by ``queue.requeue`` are counted once, in the queue
they were requeued to (their wait there includes the time already waited).
"""

from alembic import op

revision = "0004_agent_states"
down_revision = "0003_recordings"
branch_labels = None
depends_on = None

STATEMENTS = [
    """
    CREATE TABLE agent_states (
        agent_id text NOT NULL,
        state text NOT NULL,
        reason text,
        queue_id text,
        call_id text,
        started_at timestamptz,
        ended_at timestamptz,
        secs numeric GENERATED ALWAYS AS
            (round(extract(epoch FROM ended_at - started_at), 3)) STORED,
        started_seq bigint NOT NULL,
        ended_seq bigint,
        PRIMARY KEY (agent_id, started_seq)
    )
    """,
    "CREATE INDEX agent_states_open ON agent_states (agent_id) WHERE ended_seq IS NULL",
    """
    CREATE VIEW report_agent_states AS
    SELECT date_trunc('day', started_at) AS day,
           agent_id,
           state,
           count(*) AS intervals,
           round(coalesce(sum(secs), 0), 3) AS secs,
           bool_or(ended_seq IS NULL) AS now_in_state
      FROM agent_states
     GROUP BY 1, 2, 3
    """,
    """
    CREATE FUNCTION report_queue_summary(sla_secs numeric)
    RETURNS TABLE (hour timestamptz, queue_id text, offered bigint, answered bigint,
                   abandoned bigint, timed_out bigint, avg_wait_secs numeric,
                   p90_wait_secs numeric, answered_within_sla bigint, service_level numeric)
    LANGUAGE sql STABLE AS $$
      SELECT date_trunc('hour', q.joined_at),
             q.queue_id,
             count(*),
             count(q.connected_at),
             count(*) FILTER (WHERE q.left_reason IN ('abandoned', 'hangup')),
             count(*) FILTER (WHERE q.left_reason = 'timeout'),
             round(avg(q.wait_secs), 3),
             round(percentile_cont(0.9) WITHIN GROUP (ORDER BY q.wait_secs)::numeric, 3),
             count(*) FILTER (WHERE q.connected_at IS NOT NULL AND q.wait_secs <= sla_secs),
             round((count(*) FILTER (WHERE q.connected_at IS NOT NULL
                                       AND q.wait_secs <= sla_secs))::numeric
                   / count(*), 3)
        FROM queue_entries q
       WHERE q.left_reason IS DISTINCT FROM 'requeued'
       GROUP BY 1, 2
    $$
    """,
]


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS report_queue_summary(numeric)")
    op.execute("DROP VIEW IF EXISTS report_agent_states")
    op.execute("DROP TABLE IF EXISTS agent_states")
