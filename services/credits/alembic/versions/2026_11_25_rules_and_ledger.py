"""rule versions and the credit ledger: tables, append-only and balance triggers, outbox flag

Revision ID: f4a4a7e23be3
Revises: 5d1e0c2a7b90
Create Date: 2026-11-25 12:05:32.071046
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision: str = 'f4a4a7e23be3'
down_revision: str | None = '5d1e0c2a7b90'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYSTEM_ACCOUNTS = ("issuing", "conversion", "expiry", "writeoff", "points_issuing")
APPEND_ONLY = ("ledger_transaction", "credit_posting", "credit_source")
SIGNED = "CASE NEW.side WHEN 'credit' THEN NEW.amount_hundredths ELSE -NEW.amount_hundredths END"

PG_UP = [
    """
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the ledger is append only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = '23514';
    END $$
    """,
    *(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        for table in APPEND_ONLY
    ),
    *(
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
        for table in APPEND_ONLY
    ),
    f"""
    CREATE FUNCTION ledger_apply_posting() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE ledger_account SET balance_hundredths = balance_hundredths + {SIGNED}
        WHERE id = NEW.account_id AND kind IN ('learner', 'points');
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER credit_posting_balance AFTER INSERT ON credit_posting "
    "FOR EACH ROW EXECUTE FUNCTION ledger_apply_posting()",
    # deferred: legs are inserted one by one, the sum is checked at commit
    """
    CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE total bigint;
    BEGIN
        SELECT COALESCE(SUM(CASE side WHEN 'credit' THEN amount_hundredths
                                      ELSE -amount_hundredths END), 0)
          INTO total FROM credit_posting WHERE transaction_id = NEW.transaction_id;
        IF total <> 0 THEN
            RAISE EXCEPTION 'ledger transaction % does not balance (off by %)',
                NEW.transaction_id, total USING ERRCODE = '23514';
        END IF;
        RETURN NULL;
    END $$
    """,
    "CREATE CONSTRAINT TRIGGER credit_posting_balanced AFTER INSERT ON credit_posting "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()",
    # the ledger's outbox: any status change makes the record's learner due for settlement
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
]
PG_DOWN = [
    "DROP TRIGGER learning_record_status_unsettled ON learning_record",
    "DROP FUNCTION learning_record_mark_unsettled()",
    "DROP TRIGGER credit_posting_balanced ON credit_posting",
    "DROP FUNCTION ledger_check_balanced()",
    "DROP TRIGGER credit_posting_balance ON credit_posting",
    "DROP FUNCTION ledger_apply_posting()",
    *(f"DROP TRIGGER {table}_no_truncate ON {table}" for table in APPEND_ONLY),
    *(f"DROP TRIGGER {table}_append_only ON {table}" for table in APPEND_ONLY),
    "DROP FUNCTION ledger_refuse_change()",
]
SQLITE_UP = [
    *(
        f"CREATE TRIGGER {table}_no_{op_} BEFORE {op_.upper()} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'the ledger is append only: {op_} on {table} refused'); END"
        for table in APPEND_ONLY
        for op_ in ("update", "delete")
    ),
    f"""
    CREATE TRIGGER credit_posting_balance AFTER INSERT ON credit_posting BEGIN
        UPDATE ledger_account SET balance_hundredths = balance_hundredths + {SIGNED}
        WHERE id = NEW.account_id AND kind IN ('learner', 'points');
    END
    """,
    """
    CREATE TRIGGER learning_record_status_unsettled AFTER UPDATE OF status ON learning_record
    WHEN OLD.status IS NOT NEW.status BEGIN
        UPDATE learning_record SET ledger_dirty = 1 WHERE id = NEW.id;
    END
    """,
]
SQLITE_DOWN = [
    "DROP TRIGGER learning_record_status_unsettled",
    "DROP TRIGGER credit_posting_balance",
    *(f"DROP TRIGGER {table}_no_{op_}" for table in APPEND_ONLY for op_ in ("update", "delete")),
]


def upgrade() -> None:
    op.create_table('learner_ledger',
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('learner_id', name=op.f('pk_learner_ledger'))
    )
    op.create_table('ledger_account',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=True),
    sa.Column('category_code', sa.String(length=40), nullable=False),
    sa.Column('balance_hundredths', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('issuing', 'conversion', 'expiry', 'writeoff', 'points_issuing', 'learner', 'points')", name=op.f('ck_ledger_account_kind_known')),
    sa.CheckConstraint("kind NOT IN ('learner', 'points') OR balance_hundredths >= 0", name=op.f('ck_ledger_account_not_overdrawn')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_account'))
    )
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.create_index('uq_ledger_account_learner', ['kind', 'learner_id', 'category_code'], unique=True, sqlite_where=sa.text('learner_id IS NOT NULL'), postgresql_where=sa.text('learner_id IS NOT NULL'))
        batch_op.create_index('uq_ledger_account_system', ['kind'], unique=True, sqlite_where=sa.text('learner_id IS NULL'), postgresql_where=sa.text('learner_id IS NULL'))

    op.create_table('rule_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.Column('body', sa.JSON(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=60), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('publish_reason', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_version')),
    sa.UniqueConstraint('code', 'version', name=op.f('uq_rule_version_code_version'))
    )
    op.create_table('ledger_transaction',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=True),
    sa.Column('rule_version_id', sa.Integer(), nullable=True),
    sa.Column('reverses_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reference', sa.String(length=80), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('memo', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=60), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('accrual', 'adjustment', 'reversal', 'certification', 'conversion', 'conversion_cancel', 'expiry', 'points')", name=op.f('ck_ledger_transaction_kind_known')),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_transaction.id'], name=op.f('fk_ledger_transaction_reverses_id_ledger_transaction')),
    sa.ForeignKeyConstraint(['rule_version_id'], ['rule_version.id'], name=op.f('fk_ledger_transaction_rule_version_id_rule_version')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transaction'))
    )
    with op.batch_alter_table('ledger_transaction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_transaction_learner_id'), ['learner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_transaction_reference'), ['reference'], unique=False)
        batch_op.create_index('uq_ledger_transaction_idempotency_key', ['idempotency_key'], unique=True, sqlite_where=sa.text('idempotency_key IS NOT NULL'), postgresql_where=sa.text('idempotency_key IS NOT NULL'))

    op.create_table('credit_posting',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('side', sa.String(length=6), nullable=False),
    sa.Column('amount_hundredths', sa.BigInteger(), nullable=False),
    sa.CheckConstraint("side IN ('debit', 'credit')", name=op.f('ck_credit_posting_side_known')),
    sa.CheckConstraint('amount_hundredths > 0', name=op.f('ck_credit_posting_amount_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_account.id'], name=op.f('fk_credit_posting_account_id_ledger_account')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_credit_posting_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_posting'))
    )
    with op.batch_alter_table('credit_posting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_posting_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_posting_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('credit_source',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('transaction_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('learner_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=80), nullable=False),
    sa.Column('clause', sa.String(length=40), nullable=False),
    sa.Column('category_code', sa.String(length=40), nullable=False),
    sa.Column('earned_on', sa.Date(), nullable=False),
    sa.Column('rule_version_id', sa.Integer(), nullable=True),
    sa.Column('amount_hundredths', sa.BigInteger(), nullable=False),
    sa.Column('record_ids', sa.JSON(), nullable=False),
    sa.Column('certification_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint('amount_hundredths <> 0', name=op.f('ck_credit_source_amount_not_zero')),
    sa.ForeignKeyConstraint(['rule_version_id'], ['rule_version.id'], name=op.f('fk_credit_source_rule_version_id_rule_version')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_credit_source_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_source'))
    )
    with op.batch_alter_table('credit_source', schema=None) as batch_op:
        batch_op.create_index('ix_credit_source_learner_key', ['learner_id', 'key'], unique=False)
        batch_op.create_index(batch_op.f('ix_credit_source_transaction_id'), ['transaction_id'], unique=False)

    with op.batch_alter_table('learning_record', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ledger_dirty', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.create_index('ix_learning_record_unsettled', ['learner_id'], unique=False, sqlite_where=sa.text('ledger_dirty'), postgresql_where=sa.text('ledger_dirty'))

    op.bulk_insert(
        sa.table(
            "ledger_account",
            sa.column("kind", sa.String),
            sa.column("category_code", sa.String),
            sa.column("balance_hundredths", sa.BigInteger),
            sa.column("created_at", sa.DateTime(timezone=True)),
        ),
        [
            {"kind": kind, "category_code": "", "balance_hundredths": 0, "created_at": datetime.now(UTC)}
            for kind in SYSTEM_ACCOUNTS
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_UP:
            op.execute(statement)
    else:
        for statement in SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in PG_DOWN:
            op.execute(statement)
    else:
        for statement in SQLITE_DOWN:
            op.execute(statement)
    with op.batch_alter_table('learning_record', schema=None) as batch_op:
        batch_op.drop_index('ix_learning_record_unsettled', sqlite_where=sa.text('ledger_dirty'), postgresql_where=sa.text('ledger_dirty'))
        batch_op.drop_column('ledger_dirty')

    with op.batch_alter_table('credit_source', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_source_transaction_id'))
        batch_op.drop_index('ix_credit_source_learner_key')

    op.drop_table('credit_source')
    with op.batch_alter_table('credit_posting', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_posting_transaction_id'))
        batch_op.drop_index(batch_op.f('ix_credit_posting_account_id'))

    op.drop_table('credit_posting')
    with op.batch_alter_table('ledger_transaction', schema=None) as batch_op:
        batch_op.drop_index('uq_ledger_transaction_idempotency_key', sqlite_where=sa.text('idempotency_key IS NOT NULL'), postgresql_where=sa.text('idempotency_key IS NOT NULL'))
        batch_op.drop_index(batch_op.f('ix_ledger_transaction_reference'))
        batch_op.drop_index(batch_op.f('ix_ledger_transaction_learner_id'))

    op.drop_table('ledger_transaction')
    op.drop_table('rule_version')
    with op.batch_alter_table('ledger_account', schema=None) as batch_op:
        batch_op.drop_index('uq_ledger_account_system', sqlite_where=sa.text('learner_id IS NULL'), postgresql_where=sa.text('learner_id IS NULL'))
        batch_op.drop_index('uq_ledger_account_learner', sqlite_where=sa.text('learner_id IS NOT NULL'), postgresql_where=sa.text('learner_id IS NOT NULL'))

    op.drop_table('ledger_account')
    op.drop_table('learner_ledger')
