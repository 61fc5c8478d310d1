"""the ledger's outbox becomes a table of learners (one row per learner, not a flag per record)

Clearing a flag on every settled record cost a row update per record; the outbox keeps one row
per learner with changes, filled by triggers on learning_record in the same transaction as the
change. The triggers also make each learner's ledger lock row, so workers can lock learners with
SKIP LOCKED without waiting on each other's inserts.

Revision ID: 13080d9c26c2
Revises: 9e332cf3455b
Create Date: 2026-11-25 12:46:57.780894
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '13080d9c26c2'
down_revision: str | None = '9e332cf3455b'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_UP = [
    "CREATE SEQUENCE ledger_outbox_seq",
    # statement triggers with transition tables: one INSERT per batch, not per record; learners
    # in key order, so two concurrent batches never wait on each other in a cycle
    """
    CREATE FUNCTION ledger_queue_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO learner_ledger (learner_id)
            SELECT DISTINCT learner_id FROM new_rows ORDER BY learner_id
            ON CONFLICT DO NOTHING;
        INSERT INTO ledger_outbox (learner_id, seq, queued_at)
            SELECT learner_id, nextval('ledger_outbox_seq'), now()
            FROM (SELECT DISTINCT learner_id FROM new_rows ORDER BY learner_id) AS changed
            ON CONFLICT (learner_id) DO UPDATE SET seq = EXCLUDED.seq;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER learning_record_queue_inserted AFTER INSERT ON learning_record "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_queue_inserted()",
    """
    CREATE FUNCTION ledger_queue_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO ledger_outbox (learner_id, seq, queued_at)
            SELECT learner_id, nextval('ledger_outbox_seq'), now()
            FROM (
                SELECT DISTINCT n.learner_id FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE o.status IS DISTINCT FROM n.status ORDER BY n.learner_id
            ) AS changed
            ON CONFLICT (learner_id) DO UPDATE SET seq = EXCLUDED.seq;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER learning_record_queue_changed AFTER UPDATE ON learning_record "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_queue_changed()",
    # what the old flags said is still to do
    "INSERT INTO learner_ledger (learner_id) SELECT DISTINCT learner_id FROM learning_record "
    "ON CONFLICT DO NOTHING",
    "INSERT INTO ledger_outbox (learner_id, seq, queued_at) "
    "SELECT learner_id, nextval('ledger_outbox_seq'), now() "
    "FROM (SELECT DISTINCT learner_id FROM learning_record WHERE ledger_dirty) AS dirty",
    "DROP TRIGGER learning_record_status_unsettled ON learning_record",
    "DROP FUNCTION learning_record_mark_unsettled()",
    "DROP INDEX ix_learning_record_unsettled",
    "ALTER TABLE learning_record DROP COLUMN ledger_dirty",
]
PG_DOWN = [
    "ALTER TABLE learning_record ADD COLUMN ledger_dirty boolean NOT NULL DEFAULT false",
    "UPDATE learning_record SET ledger_dirty = true "
    "WHERE learner_id IN (SELECT learner_id FROM ledger_outbox)",
    "ALTER TABLE learning_record ALTER COLUMN ledger_dirty SET DEFAULT true",
    "CREATE INDEX ix_learning_record_unsettled ON learning_record (learner_id) WHERE ledger_dirty",
    """
    CREATE FUNCTION learning_record_mark_unsettled() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.ledger_dirty := true;
        RETURN NEW;
    END $$
    """,
    "CREATE TRIGGER learning_record_status_unsettled BEFORE UPDATE OF status ON learning_record "
    "FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) "
    "EXECUTE FUNCTION learning_record_mark_unsettled()",
    "DROP TRIGGER learning_record_queue_changed ON learning_record",
    "DROP FUNCTION ledger_queue_changed()",
    "DROP TRIGGER learning_record_queue_inserted ON learning_record",
    "DROP FUNCTION ledger_queue_inserted()",
    "DROP SEQUENCE ledger_outbox_seq",
]
SQLITE_QUEUE = (
    "INSERT INTO ledger_outbox (learner_id, seq, queued_at) VALUES (NEW.learner_id, "
    "(SELECT coalesce(max(seq), 0) + 1 FROM ledger_outbox), CURRENT_TIMESTAMP) "
    "ON CONFLICT (learner_id) DO UPDATE SET seq = excluded.seq;"
)
SQLITE_UP = [
    f"""
    CREATE TRIGGER learning_record_queue_inserted AFTER INSERT ON learning_record BEGIN
        INSERT OR IGNORE INTO learner_ledger (learner_id) VALUES (NEW.learner_id);
        {SQLITE_QUEUE}
    END
    """,
    f"""
    CREATE TRIGGER learning_record_queue_changed AFTER UPDATE OF status ON learning_record
    WHEN OLD.status IS NOT NEW.status BEGIN
        {SQLITE_QUEUE}
    END
    """,
    "INSERT OR IGNORE INTO learner_ledger (learner_id) "
    "SELECT DISTINCT learner_id FROM learning_record",
    "INSERT INTO ledger_outbox (learner_id, seq, queued_at) "
    "SELECT learner_id, row_number() OVER (ORDER BY learner_id), CURRENT_TIMESTAMP "
    "FROM (SELECT DISTINCT learner_id FROM learning_record WHERE ledger_dirty)",
    "DROP TRIGGER learning_record_status_unsettled",
    "DROP INDEX ix_learning_record_unsettled",
    "ALTER TABLE learning_record DROP COLUMN ledger_dirty",
]
SQLITE_DOWN = [
    "ALTER TABLE learning_record ADD COLUMN ledger_dirty BOOLEAN NOT NULL DEFAULT 0",
    "UPDATE learning_record SET ledger_dirty = 1 "
    "WHERE learner_id IN (SELECT learner_id FROM ledger_outbox)",
    "CREATE INDEX ix_learning_record_unsettled ON learning_record (learner_id) WHERE ledger_dirty",
    """
    CREATE TRIGGER learning_record_status_unsettled AFTER UPDATE OF status ON learning_record
    WHEN OLD.status IS NOT NEW.status BEGIN
        UPDATE learning_record SET ledger_dirty = 1 WHERE id = NEW.id;
    END
    """,
    "DROP TRIGGER learning_record_queue_changed",
    "DROP TRIGGER learning_record_queue_inserted",
]


def upgrade() -> None:
    op.create_table(
        "ledger_outbox",
        sa.Column("learner_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("learner_id", name=op.f("pk_ledger_outbox")),
    )
    op.create_index(op.f("ix_ledger_outbox_seq"), "ledger_outbox", ["seq"], unique=False)
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in PG_UP if postgres else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in PG_DOWN if postgres else SQLITE_DOWN:
        op.execute(statement)
    op.drop_index(op.f("ix_ledger_outbox_seq"), table_name="ledger_outbox")
    op.drop_table("ledger_outbox")
