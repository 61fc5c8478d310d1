"""partner-record guards lock 128 learner buckets, not one lock per learner

Revision ID: 9b1e7c3d5a20
Revises: 2f6b8d0c4e17
Create Date: 2026-11-25

The statement trigger on ``learning_record`` (see ingest_concurrency_guards) took one
transaction-level advisory lock per learner of its partner and xAPI rows. PostgreSQL keeps those
in its shared lock table (max_locks_per_transaction x max_connections, 6,400 by default): a
COPY of 50,000 learners' records failed with "out of shared memory", and some thirty concurrent
1,000-learner batches would too. Learners now share 128 buckets (the last byte of the id, which
is random in a UUID v4): at most 128 locks a statement, keys (7411, bucket) in one namespace;
batches whose learners share a bucket take turns for the trigger and their commit, which the
audit trail's head lock already serialises.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "9b1e7c3d5a20"
down_revision: str | None = "2f6b8d0c4e17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = "('pending', 'verified')"

FUNCTION = """
CREATE OR REPLACE FUNCTION learning_record_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    found_row record;
BEGIN
{lock}

    WITH added AS (
        SELECT learner_id, learner_day_of(started_at) AS day, sum(minutes) AS minutes,
               bool_or(source IN ('partner', 'xapi')) AS partner
        FROM new_rows WHERE status IN {live}
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
    WHERE n.source IN ('partner', 'xapi') AND n.status IN {live} AND EXISTS (
        SELECT 1 FROM learning_record AS r
        WHERE r.learner_id = n.learner_id AND r.status IN {live}
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
"""

BUCKETS = """
    -- partner rows of learners in one of 128 buckets take turns from here to commit (one
    -- lock per learner ran out of PostgreSQL's shared lock table: a statement of 50,000
    -- learners, or 30 batches of 1,000 at once); the statements below run after the locks,
    -- so they see every batch that committed before us
    PERFORM count(pg_advisory_xact_lock(7411, keys.bucket)) FROM (
        SELECT DISTINCT get_byte(uuid_send(learner_id), 15) % 128 AS bucket
        FROM new_rows WHERE source IN ('partner', 'xapi') ORDER BY 1
    ) AS keys;"""

PER_LEARNER = """
    -- partner rows of one learner take turns from here to commit; the statements below
    -- run after the locks, so they see every batch that committed before us
    PERFORM count(pg_advisory_xact_lock(keys.k)) FROM (
        SELECT DISTINCT ('x' || left(replace(learner_id::text, '-', ''), 16))::bit(64)::bigint AS k
        FROM new_rows WHERE source IN ('partner', 'xapi') ORDER BY 1
    ) AS keys;"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite serialises writers; its guards take no locks
    op.execute(FUNCTION.format(lock=BUCKETS.strip("\n"), live=LIVE))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION.format(lock=PER_LEARNER.strip("\n"), live=LIVE))
