"""``report_abandonment`` counts a queued call as abandoned only when its caller gave up.

Revision ID: 0005_abandonment
Revises: 0004_agent_states
Create Date: 2026-12-06

The queue half of the view counted every entry that left unanswered, other than by
``dequeued``, ``timeout`` or ``transferred``, as abandoned: a ``queue.requeue`` (the call
waits on in another queue) and a restart (``system``) inflated the rate. It now agrees
with ``report_queue_summary``: abandoned is ``left_reason`` ``abandoned`` (``hangup`` in
logs older than the queue feature), and an entry that left by ``requeued`` is offered
once, in the queue it was requeued to. The context half is unchanged.
"""

from alembic import op

revision = "0005_abandonment"
down_revision = "0004_agent_states"
branch_labels = None
depends_on = None

QUEUE_HALF = """
    SELECT date_trunc('hour', joined_at) AS hour,
           'queue'::text AS via,
           queue_id AS name,
           count(*) AS offered,
           count(*) FILTER (WHERE connected_at IS NOT NULL) AS answered,
           count(*) FILTER (WHERE {abandoned}) AS abandoned,
           round(count(*) FILTER (WHERE {abandoned})::numeric / count(*), 4)
             AS abandonment_rate
      FROM queue_entries
     {where}
     GROUP BY 1, 3
"""
CONTEXT_HALF = """
    SELECT date_trunc('hour', created_at), 'context', context,
           count(*),
           count(*) FILTER (WHERE outcome = 'answered'),
           count(*) FILTER (WHERE outcome = 'abandoned'),
           round(count(*) FILTER (WHERE outcome = 'abandoned')::numeric / count(*), 4)
      FROM call_outcomes
     WHERE direction = 'inbound'
     GROUP BY 1, 3
"""
NOW = QUEUE_HALF.format(
    abandoned="connected_at IS NULL AND left_reason IN ('abandoned', 'hangup')",
    where="WHERE left_reason IS DISTINCT FROM 'requeued'",
)
BEFORE = QUEUE_HALF.format(
    abandoned="connected_at IS NULL AND left_at IS NOT NULL"
    " AND left_reason NOT IN ('dequeued', 'timeout', 'transferred')",
    where="",
)


def _view(queue_half: str) -> str:
    return f"CREATE OR REPLACE VIEW report_abandonment AS {queue_half} UNION ALL {CONTEXT_HALF}"


def upgrade() -> None:
    op.execute(_view(NOW))


def downgrade() -> None:
    op.execute(_view(BEFORE))
