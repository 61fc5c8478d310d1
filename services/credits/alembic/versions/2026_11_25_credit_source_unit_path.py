"""provenance lines name the unit they count under in the statistics

Revision ID: 6c2e9a4f7b13
Revises: 3e5a7c9b1d24
Create Date: 2026-11-25 18:30:00

A unit's credits issued were the provenance lines of the period joined to the records they
name, to keep those hosted under the unit: a town's report read the whole district's lines of
the period and hashed them (1.3 s of a town's 2.5 s at 15 million records). Each line now
carries its unit: the host unit of the record (``hours:<record id>``) or activity
(``completion:<activity id>``), the certified learner's unit (certifications); volunteer
points have none. Existing lines are filled from those rows. On PostgreSQL the new index
carries the columns the report sums, so a unit's lines are one index range per unit path.

The ledger is append only (a trigger refuses any UPDATE of a provenance line). Filling a column
that did not exist changes nothing a line said, so the guard is lifted for those statements
and put back in the same transaction; if anything fails the whole migration rolls back with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6c2e9a4f7b13"
down_revision: str | None = "3e5a7c9b1d24"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


LIFT_GUARD = {
    "postgresql": ("ALTER TABLE credit_source DISABLE TRIGGER credit_source_append_only",),
    "sqlite": ("DROP TRIGGER credit_source_no_update",),
}
RESTORE_GUARD = {
    "postgresql": ("ALTER TABLE credit_source ENABLE TRIGGER credit_source_append_only",),
    "sqlite": (
        "CREATE TRIGGER credit_source_no_update BEFORE UPDATE ON credit_source BEGIN"
        " SELECT RAISE(ABORT, 'the ledger is append only: update on credit_source refused'); END",
    ),
}
BACKFILL = {
    "postgresql": (
        "UPDATE credit_source s SET unit_path = r.host_unit_path FROM learning_record r"
        " WHERE s.key LIKE 'hours:%' AND r.id = CAST(substr(s.key, 7) AS bigint)",
        "UPDATE credit_source s SET unit_path = a.host_unit_path FROM activity a"
        " WHERE s.key LIKE 'completion:%' AND a.id = CAST(substr(s.key, 12) AS uuid)",
        "UPDATE credit_source s SET unit_path = c.learner_unit_path FROM certification c"
        " WHERE c.id = s.certification_id",
    ),
    # SQLite keeps uuids as 32 hex digits; the keys spell them with hyphens
    "sqlite": (
        "UPDATE credit_source SET unit_path = (SELECT r.host_unit_path FROM learning_record r"
        " WHERE r.id = CAST(substr(credit_source.key, 7) AS INTEGER))"
        " WHERE key LIKE 'hours:%'",
        "UPDATE credit_source SET unit_path = (SELECT a.host_unit_path FROM activity a"
        " WHERE a.id = replace(substr(credit_source.key, 12), '-', ''))"
        " WHERE key LIKE 'completion:%'",
        "UPDATE credit_source SET unit_path = (SELECT c.learner_unit_path FROM certification c"
        " WHERE c.id = credit_source.certification_id)"
        " WHERE certification_id IS NOT NULL",
    ),
}


def upgrade() -> None:
    op.add_column("credit_source", sa.Column("unit_path", sa.String(length=400), nullable=True))
    dialect = op.get_bind().dialect.name
    for statement in (*LIFT_GUARD[dialect], *BACKFILL[dialect], *RESTORE_GUARD[dialect]):
        op.execute(statement)
    op.create_index(
        "ix_credit_source_unit_path_earned_on",
        "credit_source",
        ["unit_path", "earned_on"],
        postgresql_include=["key", "amount_hundredths"],
    )


def downgrade() -> None:
    op.drop_index("ix_credit_source_unit_path_earned_on", table_name="credit_source")
    op.drop_column("credit_source", "unit_path")
