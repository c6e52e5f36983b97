"""Recordings: why each one stopped, and the ``report_recordings`` view.

Revision ID: 0003_recordings
Revises: 0002
Create Date: 2026-12-06

``recordings.reason`` is ``record.stopped``'s reason (``rwi``, ``hangup``,
``max_duration``, ``system``); the column is derived like the rest of the table
(``rwi rebuild calls`` fills it for the events already in the log).
"""

from alembic import op

revision = "0003_recordings"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE recordings ADD COLUMN reason text")
    op.execute(
        """
        CREATE VIEW report_recordings AS
        SELECT started_at,
               stopped_at,
               recording_id,
               call_id,
               mode,
               state,
               reason,
               duration_secs,
               paused_secs,
               paused_intervals,
               path,
               error
          FROM recordings
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS report_recordings")
    op.execute("ALTER TABLE recordings DROP COLUMN IF EXISTS reason")
