"""ingest concurrency guards: live stretches by end, day totals, partner-row checks

Revision ID: 7c4f2e9a1d36
Revises: f32f8ce6ebe9
Create Date: 2026-11-25 13:00:00

Both backends: an index of live records by (learner_id, ended_at), so the overlap check reads
only the stretches that end after a batch begins instead of a learner's whole history.

PostgreSQL only (SQLite serialises its writers, so the Python checks suffice there):

- ``learner_day_minutes``: live minutes per learner per Beijing day (UTC+8, the day a stretch
  starts on), kept by triggers on ``learning_record`` for every source, so the 24-hours-a-day
  check reads one row per learner and day instead of summing records.
- After every INSERT statement on ``learning_record``, for the partner and xAPI rows in it: the learners'
  advisory locks (in key order; held to commit), then the day totals, then the overlap check,
  each seeing everything committed before the lock. A partner row that takes a day past 24
  hours raises check_violation (constraint ``learner_day_minutes_partner_limit``); one that
  overlaps another live stretch of its learner raises exclusion_violation (constraint
  ``learning_record_partner_overlap``). The ingestion path checks both in Python first and
  retries a batch that loses such a race, so these fire only when two batches collide.
  Other sources (check-out) are counted but never refused here.
- Status changes (void, reject) and deletes take minutes off the totals.

An EXCLUDE USING gist constraint was measured instead (docs/decisions.md): at 1,000,000 rows it
doubled the cost of inserting a 1,000-record batch, and still left the day rule to locks.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c4f2e9a1d36"
down_revision: str | None = "f32f8ce6ebe9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "('pending', 'verified')"

FUNCTIONS = [
    """
CREATE FUNCTION learner_day_of(moment timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ((moment AT TIME ZONE 'UTC') + interval '8 hours')::date $$
""",
    f"""
CREATE FUNCTION learning_record_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    found_row record;
BEGIN
    -- partner rows of one learner take turns from here to commit; the statements below
    -- run after the locks, so they see every batch that committed before us
    PERFORM count(pg_advisory_xact_lock(keys.k)) FROM (
        SELECT DISTINCT ('x' || left(replace(learner_id::text, '-', ''), 16))::bit(64)::bigint AS k
        FROM new_rows WHERE source IN ('partner', 'xapi') ORDER BY 1
    ) AS keys;

    WITH added AS (
        SELECT learner_id, learner_day_of(started_at) AS day, sum(minutes) AS minutes,
               bool_or(source IN ('partner', 'xapi')) AS partner
        FROM new_rows WHERE status IN {LIVE}
        GROUP BY 1, 2
    ), totals AS (
        INSERT INTO learner_day_minutes AS t (learner_id, day, minutes)
        SELECT learner_id, day, minutes FROM added ORDER BY learner_id, day
        ON CONFLICT (learner_id, day) DO UPDATE SET minutes = t.minutes + excluded.minutes
        RETURNING t.learner_id, t.day, t.minutes
    )
    SELECT totals.learner_id, totals.day, totals.minutes INTO found_row
    FROM totals JOIN added USING (learner_id, day)
    WHERE added.partner AND totals.minutes > 24 * 60
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'check_violation',
            CONSTRAINT = 'learner_day_minutes_partner_limit',
            MESSAGE = format('learner %s would have %s minutes on %s',
                             found_row.learner_id, found_row.minutes, found_row.day);
    END IF;

    SELECT n.learner_id, n.external_id INTO found_row
    FROM new_rows AS n
    WHERE n.source IN ('partner', 'xapi') AND n.status IN {LIVE} AND EXISTS (
        SELECT 1 FROM learning_record AS r
        WHERE r.learner_id = n.learner_id AND r.status IN {LIVE}
          AND r.ended_at > n.started_at AND r.started_at < n.ended_at AND r.id <> n.id
    )
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'exclusion_violation',
            CONSTRAINT = 'learning_record_partner_overlap',
            MESSAGE = format('partner record %s overlaps a live stretch of learner %s',
                             found_row.external_id, found_row.learner_id);
    END IF;
    RETURN NULL;
END $$
""",
    f"""
CREATE FUNCTION learning_record_after_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN {LIVE} THEN
        UPDATE learner_day_minutes SET minutes = minutes - OLD.minutes
        WHERE learner_id = OLD.learner_id AND day = learner_day_of(OLD.started_at);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.status IN {LIVE} THEN
        INSERT INTO learner_day_minutes AS t (learner_id, day, minutes)
        VALUES (NEW.learner_id, learner_day_of(NEW.started_at), NEW.minutes)
        ON CONFLICT (learner_id, day) DO UPDATE SET minutes = t.minutes + excluded.minutes;
    END IF;
    RETURN NULL;
END $$
""",
    """
CREATE FUNCTION learning_record_after_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM learner_day_minutes;
    RETURN NULL;
END $$
""",
]

TRIGGERS = [
    "CREATE TRIGGER learning_record_after_insert AFTER INSERT ON learning_record"
    " REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION learning_record_after_insert()",
    "CREATE TRIGGER learning_record_after_change"
    " AFTER UPDATE OF status, learner_id, started_at, minutes OR DELETE ON learning_record"
    " FOR EACH ROW EXECUTE FUNCTION learning_record_after_change()",
    "CREATE TRIGGER learning_record_after_truncate AFTER TRUNCATE ON learning_record"
    " FOR EACH STATEMENT EXECUTE FUNCTION learning_record_after_truncate()",
]

# the reverse of FUNCTIONS and TRIGGERS, in reverse order
DROP = [
    "DROP TRIGGER learning_record_after_truncate ON learning_record",
    "DROP TRIGGER learning_record_after_change ON learning_record",
    "DROP TRIGGER learning_record_after_insert ON learning_record",
    "DROP FUNCTION learning_record_after_truncate()",
    "DROP FUNCTION learning_record_after_change()",
    "DROP FUNCTION learning_record_after_insert()",
    "DROP FUNCTION learner_day_of(timestamptz)",
]


def upgrade() -> None:
    with op.batch_alter_table("learning_record", schema=None) as batch_op:
        batch_op.create_index(
            "ix_learning_record_live_learner_ended",
            ["learner_id", "ended_at"],
            unique=False,
            sqlite_where=sa.text(f"status IN {LIVE}"),
            postgresql_where=sa.text(f"status IN {LIVE}"),
        )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "learner_day_minutes",
        sa.Column("learner_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("minutes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("learner_id", "day", name=op.f("pk_learner_day_minutes")),
    )
    # every batch updates the rows of its learners' days: room on each page keeps the updates
    # HOT (no new index entry per update)
    op.execute("ALTER TABLE learner_day_minutes SET (fillfactor = 50)")
    for statement in FUNCTIONS:
        op.execute(statement)
    op.execute(
        "INSERT INTO learner_day_minutes (learner_id, day, minutes)"
        " SELECT learner_id, learner_day_of(started_at), sum(minutes) FROM learning_record"
        f" WHERE status IN {LIVE} GROUP BY 1, 2"
    )
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DROP:
            op.execute(statement)
        op.drop_table("learner_day_minutes")
    with op.batch_alter_table("learning_record", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_learning_record_live_learner_ended",
            sqlite_where=sa.text(f"status IN {LIVE}"),
            postgresql_where=sa.text(f"status IN {LIVE}"),
        )
