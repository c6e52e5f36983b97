"""Event store: the events log and its head row.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# The group-commit writer's fast path: one round trip, committed by the caller's
# autocommit. Each statement of a VOLATILE plpgsql function takes a fresh snapshot, so
# the checks after the head-row lock see everything committed before it. When any event
# id already exists (the unique index says so) or any expected version is off, nothing is
# written and -1 is returned: the writer then plans that batch request by request.
APPEND_FUNCTION = """
CREATE FUNCTION rwi_append_batch(
    r_stream text[], r_expected int[], r_offset int[],
    e_id uuid[], e_stream text[], e_index int[], e_type text[], e_data text[], e_meta text[],
    channel text
) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    head bigint;
    n int := cardinality(e_id);
BEGIN
    SELECT last_seq INTO head FROM event_head WHERE id = 1 FOR UPDATE;
    IF EXISTS (SELECT 1 FROM unnest(r_expected) AS e WHERE e IS NOT NULL) AND EXISTS (
        SELECT 1 FROM unnest(r_stream, r_expected, r_offset) AS r(s, e, o)
         WHERE e IS NOT NULL
           AND coalesce((SELECT max(stream_version) FROM events WHERE stream_id = r.s), 0)
               + o <> e
    ) THEN
        RETURN -1;
    END IF;
    BEGIN
        WITH cur AS (
            SELECT s, coalesce((SELECT max(stream_version) FROM events WHERE stream_id = s), 0)
                   AS v
              FROM (SELECT DISTINCT s FROM unnest(e_stream) AS s) AS d
        )
        INSERT INTO events (seq, event_id, stream_id, stream_version, type, data, meta)
        SELECT head + u.ord, u.id, u.s, cur.v + u.i, u.t, u.d::jsonb, u.m::jsonb
          FROM unnest(e_id, e_stream, e_index, e_type, e_data, e_meta)
               WITH ORDINALITY AS u(id, s, i, t, d, m, ord)
          JOIN cur ON cur.s = u.s;
    EXCEPTION WHEN unique_violation THEN
        -- an event id that is already stored: a retry, planned request by request
        RETURN -1;
    END;
    UPDATE event_head SET last_seq = head + n WHERE id = 1;
    PERFORM pg_notify(channel, (head + n)::text);
    RETURN head + n;
END
$fn$
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("stream_version", sa.Integer, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("data", postgresql.JSONB, nullable=False),
        sa.Column("meta", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'")),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("stream_id", "stream_version", name="events_stream_version_key"),
    )
    op.create_table(
        "event_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="event_head_single_row"),
    )
    op.execute("INSERT INTO event_head (id, last_seq) VALUES (1, 0)")
    op.execute(APPEND_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS rwi_append_batch")
    op.drop_table("event_head")
    op.drop_table("events")
