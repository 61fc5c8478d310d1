"""ledger integrity checked per statement on PostgreSQL, provenance record ids as bigint[]

Settlements write postings and provenance lines by the thousand through COPY. Row-level foreign
key checks and a balance UPDATE per posting cost more than the rows themselves, so on
PostgreSQL the same guarantees are kept by statement-level triggers over the inserted rows
(transition tables): every posting's account and transaction must exist, every provenance
line's transaction and rule version must exist, and balances move by one UPDATE per account.
Checking at insert is complete because these tables refuse UPDATE and DELETE, and so, now, do
the rows they point to (accounts, transactions, published rule versions). SQLite, the embedded
default, keeps its row-level foreign keys and trigger.

Revision ID: 6c1f2b7d9a34
Revises: 13080d9c26c2
Create Date: 2026-11-25 13:20:00
"""

from collections.abc import Sequence

from alembic import op


revision: str = "6c1f2b7d9a34"
down_revision: str | None = "13080d9c26c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEYS = (
    ("credit_posting", "fk_credit_posting_account_id_ledger_account", "account_id", "ledger_account"),
    ("credit_posting", "fk_credit_posting_transaction_id_ledger_transaction", "transaction_id", "ledger_transaction"),
    ("credit_source", "fk_credit_source_transaction_id_ledger_transaction", "transaction_id", "ledger_transaction"),
    ("credit_source", "fk_credit_source_rule_version_id_rule_version", "rule_version_id", "rule_version"),
)
SIGNED = "CASE side WHEN 'credit' THEN amount_hundredths ELSE -amount_hundredths END"

UP = [
    *(f"ALTER TABLE {table} DROP CONSTRAINT {name}" for table, name, _, _ in FOREIGN_KEYS),
    "DROP TRIGGER credit_posting_balance ON credit_posting",
    "DROP FUNCTION ledger_apply_posting()",
    f"""
    CREATE FUNCTION ledger_postings_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM new_rows n LEFT JOIN ledger_account a ON a.id = n.account_id
                   WHERE a.id IS NULL)
           OR EXISTS (SELECT 1 FROM new_rows n
                      LEFT JOIN ledger_transaction t ON t.id = n.transaction_id
                      WHERE t.id IS NULL) THEN
            RAISE EXCEPTION 'a posting names an account or transaction that does not exist'
                USING ERRCODE = '23503';
        END IF;
        UPDATE ledger_account a SET balance_hundredths = a.balance_hundredths + d.delta
        FROM (SELECT account_id, sum({SIGNED}) AS delta FROM new_rows GROUP BY account_id
              ORDER BY account_id) AS d
        WHERE a.id = d.account_id AND a.kind IN ('learner', 'points');
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER credit_posting_inserted AFTER INSERT ON credit_posting "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION ledger_postings_inserted()",
    """
    CREATE FUNCTION ledger_sources_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM new_rows n
                   LEFT JOIN ledger_transaction t ON t.id = n.transaction_id WHERE t.id IS NULL)
           OR EXISTS (SELECT 1 FROM new_rows n LEFT JOIN rule_version r ON r.id = n.rule_version_id
                      WHERE n.rule_version_id IS NOT NULL AND r.id IS NULL) THEN
            RAISE EXCEPTION 'a provenance line names a transaction or rule version that does not exist'
                USING ERRCODE = '23503';
        END IF;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER credit_source_inserted AFTER INSERT ON credit_source "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
    "EXECUTE FUNCTION ledger_sources_inserted()",
    # what postings and provenance point to is never removed
    "CREATE TRIGGER ledger_account_no_delete BEFORE DELETE ON ledger_account "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    """
    CREATE FUNCTION rule_version_keep_published() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.status = 'published' THEN
            RAISE EXCEPTION 'a published rule version is never deleted' USING ERRCODE = '23514';
        END IF;
        RETURN OLD;
    END $$
    """,
    "CREATE TRIGGER rule_version_no_delete BEFORE DELETE ON rule_version "
    "FOR EACH ROW EXECUTE FUNCTION rule_version_keep_published()",
    # provenance record ids as a native array: no JSON text to build per line
    """
    CREATE FUNCTION ledger_json_ids(ids json) RETURNS bigint[] LANGUAGE sql IMMUTABLE AS $$
        SELECT coalesce(array_agg(x::bigint), '{}') FROM json_array_elements_text(ids) AS x
    $$
    """,
    # a column type change rewrites the table without firing row triggers
    "ALTER TABLE credit_source ALTER COLUMN record_ids TYPE bigint[] "
    "USING ledger_json_ids(record_ids)",
    "DROP FUNCTION ledger_json_ids(json)",
]
DOWN = [
    "ALTER TABLE credit_source ALTER COLUMN record_ids TYPE json USING to_json(record_ids)",
    "DROP TRIGGER rule_version_no_delete ON rule_version",
    "DROP FUNCTION rule_version_keep_published()",
    "DROP TRIGGER ledger_account_no_delete ON ledger_account",
    "DROP TRIGGER credit_source_inserted ON credit_source",
    "DROP FUNCTION ledger_sources_inserted()",
    "DROP TRIGGER credit_posting_inserted ON credit_posting",
    "DROP FUNCTION ledger_postings_inserted()",
    f"""
    CREATE FUNCTION ledger_apply_posting() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE ledger_account SET balance_hundredths = balance_hundredths
            + CASE NEW.side WHEN 'credit' THEN NEW.amount_hundredths ELSE -NEW.amount_hundredths END
        WHERE id = NEW.account_id AND kind IN ('learner', 'points');
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER credit_posting_balance AFTER INSERT ON credit_posting "
    "FOR EACH ROW EXECUTE FUNCTION ledger_apply_posting()",
    *(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY ({column}) REFERENCES {target} (id)"
        for table, name, column, target in FOREIGN_KEYS
    ),
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWN:
            op.execute(statement)
