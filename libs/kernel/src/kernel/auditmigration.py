"""Migration steps both services use for their audit chain (head table, chaining, guards).

Migrations call these, so what a function emits is part of the migration history: change it
only by adding a new function for a new migration.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kernel.audittrail import FIELDS, GENESIS, entry_hash

# PostgreSQL: entries are append only; DELETE passes only while the head says a purge runs;
# the head itself cannot be deleted or moved backwards. TRUNCATE is refused as well.
_PG_GUARDS = (
    """
    CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND (SELECT purging FROM audit_head WHERE id = 1) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_entry is append only: % refused', TG_OP
            USING ERRCODE = '42501';
    END $$
    """,
    """
    CREATE TRIGGER audit_entry_append_only BEFORE UPDATE OR DELETE ON audit_entry
    FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()
    """,
    """
    CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()
    """,
    """
    CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' AND NEW.seq >= OLD.seq AND NEW.anchor_seq >= OLD.anchor_seq
           AND NEW.anchor_seq <= NEW.seq THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'audit_head only moves forward: % refused', TG_OP
            USING ERRCODE = '42501';
    END $$
    """,
    """
    CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()
    """,
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_head",
    "DROP FUNCTION IF EXISTS audit_head_forward_only()",
    "DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_entry",
    "DROP TRIGGER IF EXISTS audit_entry_append_only ON audit_entry",
    "DROP FUNCTION IF EXISTS audit_entry_append_only()",
)
_SQLITE_GUARDS = (
    """
    CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry
    BEGIN SELECT RAISE(ABORT, 'audit_entry is append only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry
    WHEN NOT (SELECT purging FROM audit_head WHERE id = 1)
    BEGIN SELECT RAISE(ABORT, 'audit_entry is append only: DELETE refused'); END
    """,
    """
    CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward: DELETE refused'); END
    """,
    """
    CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
    WHEN NEW.seq < OLD.seq OR NEW.anchor_seq < OLD.anchor_seq OR NEW.anchor_seq > NEW.seq
    BEGIN SELECT RAISE(ABORT, 'audit_head only moves forward: UPDATE refused'); END
    """,
)
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS audit_head_forward_only",
    "DROP TRIGGER IF EXISTS audit_head_no_delete",
    "DROP TRIGGER IF EXISTS audit_entry_no_delete",
    "DROP TRIGGER IF EXISTS audit_entry_no_update",
)


def head_table_columns() -> list[Any]:
    """The columns and check of ``audit_head`` (one row, id 1)."""
    return [
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.Column("purging", sa.Boolean(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    ]


def chain_existing(connection: sa.Connection) -> None:
    """Number and hash the entries already in ``audit_entry`` (by id) and write the head."""
    entry = sa.table(
        "audit_entry",
        sa.column("id"),
        sa.column("seq"),
        sa.column("prev_hash"),
        sa.column("hash"),
        *(
            sa.column(name, sa.DateTime(timezone=True)) if name == "at" else sa.column(name)
            for name in FIELDS
        ),
    )
    head = sa.table(
        "audit_head",
        *(sa.column(n) for n in ("id", "seq", "hash", "anchor_seq", "anchor_hash", "purging")),
    )
    rows = connection.execute(sa.select(entry).order_by(entry.c.id)).mappings().all()
    previous, seq = GENESIS, 0
    updates: list[dict[str, Any]] = []
    for row in rows:
        seq += 1
        fields = {name: row[name] for name in FIELDS}
        current = entry_hash(previous, seq, fields)
        updates.append({"row_id": row["id"], "seq": seq, "prev_hash": previous, "hash": current})
        previous = current
    if updates:
        connection.execute(
            sa.update(entry)
            .where(entry.c.id == sa.bindparam("row_id"))
            .values(seq=sa.bindparam("seq"), prev_hash=sa.bindparam("prev_hash"))
            .values(hash=sa.bindparam("hash")),
            updates,
        )
    connection.execute(
        sa.insert(head).values(
            id=1, seq=seq, hash=previous, anchor_seq=0, anchor_hash=GENESIS, purging=False
        )
    )


def add_guards(connection: sa.Connection) -> None:
    """Create the append-only triggers for the connection's dialect."""
    statements = _PG_GUARDS if connection.dialect.name == "postgresql" else _SQLITE_GUARDS
    for statement in statements:
        connection.exec_driver_sql(statement)


def drop_guards(connection: sa.Connection) -> None:
    """Drop what :func:`add_guards` created."""
    statements = _PG_DROP if connection.dialect.name == "postgresql" else _SQLITE_DROP
    for statement in statements:
        connection.exec_driver_sql(statement)
