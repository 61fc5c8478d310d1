"""Storing a service's audit chain: entries staged with the change, chained at commit.

A service calls :func:`stage` while it changes things; nothing is written then. Just before the
session's outermost transaction commits, a ``before_commit`` hook flushes the session's own
changes, locks the chain's head row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already holds the only write lock), numbers and hashes the staged entries
after the head, inserts them and moves the head, all in the same transaction. The lock is the
last one the transaction takes and is held only for those few statements and the commit, so
concurrent writers queue briefly and the chain stays linear. A rolled-back transaction (or
savepoint) drops its staged entries and never touched the head, so it leaves no gap.

The chain logic itself is :mod:`kernel.audittrail`; this module only moves rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    RowMapping,
    Table,
    TextClause,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from kernel.audittrail import FIELDS, Break, ChainEntry, ChainWalk, Link, entry_hash
from kernel.problems import PROBLEMS, Conflict, DomainError
from kernel.requestid import current_request_id
from kernel.tokens import Principal

RETENTION = timedelta(days=180)
"""The shortest time an entry is kept: logs of at least six months (Cybersecurity Law art. 21)."""

_STAGED = "kernel.auditstore.staged"
_MARKS = "kernel.auditstore.marks"
_CHUNK = 1000
_WALK_BATCH = 5000


@dataclass(frozen=True)
class AuditTables:
    """A service's two audit tables: the entries and the one-row head (``id`` = 1)."""

    entry: Table
    head: Table


@dataclass
class _Staged:
    tables: AuditTables
    rows: list[dict[str, Any]] = field(default_factory=list)


def digest(snapshot: Mapping[str, Any] | None) -> str | None:
    """SHA-256 of a snapshot in canonical JSON (snapshots hold masked data only)."""
    if snapshot is None:
        return None
    canonical = json.dumps(snapshot, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def actor_fields(actor: Principal | str) -> dict[str, Any]:
    """Who acted: a principal from a token, or a named system actor (``cli:<user>``)."""
    if isinstance(actor, Principal):
        return {
            "actor": actor.subject,
            "actor_kind": actor.kind,
            "actor_role": actor.roles[0] if actor.roles else None,
            "actor_unit": actor.unit,
        }
    return {"actor": actor, "actor_kind": "system", "actor_role": None, "actor_unit": None}


def new_entry(
    *,
    actor: Principal | str,
    action: str,
    target_type: str,
    target_id: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str | None = None,
    outcome: str = "ok",
    at: datetime | None = None,
) -> dict[str, Any]:
    """An entry's fields: time, actor, role, unit, action, target, digests, reason, request id."""
    return {
        "at": at or datetime.now(UTC),
        **actor_fields(actor),
        "action": action,
        "target_type": target_type,
        "target_id": target_id[:80],
        "before_digest": digest(before),
        "after_digest": digest(after),
        "reason": reason[:300] if reason else reason,
        "request_id": current_request_id(),
        "outcome": outcome[:20],
    }


def stage(session: AsyncSession | Session, tables: AuditTables, rows: list[dict[str, Any]]) -> None:
    """Queue entries (dicts of :data:`~kernel.audittrail.FIELDS`) to be chained at commit."""
    staged: list[_Staged] = session.info.setdefault(_STAGED, [])
    # every row gets every field, so one executemany statement fits them all
    staged.append(_Staged(tables, [{name: row.get(name) for name in FIELDS} for row in rows]))


def _staged_count(session: Session) -> int:
    return len(session.info.get(_STAGED, []))


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[id(transaction)] = _staged_count(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    # entries staged inside a savepoint that rolled back go with it; a root rollback drops all
    marks: dict[int, int] = session.info.get(_MARKS, {})
    if previous_transaction.nested:
        mark = marks.pop(id(previous_transaction), None)
        if mark is not None:
            del session.info.get(_STAGED, [])[mark:]
    elif previous_transaction.parent is None:
        session.info.pop(_STAGED, None)
        session.info.pop(_MARKS, None)


@event.listens_for(Session, "before_commit")
def _chain_staged(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the entries wait for the outer commit
    staged: list[_Staged] = session.info.pop(_STAGED, [])
    session.info.pop(_MARKS, None)
    if not staged:
        return
    session.flush()  # the change itself first, so the head lock is the last lock taken
    by_table: dict[int, tuple[AuditTables, list[dict[str, Any]]]] = {}
    for item in staged:
        by_table.setdefault(id(item.tables.entry), (item.tables, []))[1].extend(item.rows)
    for tables, rows in by_table.values():
        if rows:
            _append(session, tables, rows)


def _locked_head(session: Session, tables: AuditTables) -> RowMapping:
    query = select(tables.head).where(tables.head.c.id == 1)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.execute(query).mappings().one()


def _append(session: Session, tables: AuditTables, rows: list[dict[str, Any]]) -> None:
    if session.get_bind().dialect.name == "postgresql":
        _append_postgresql(session, tables, rows)
        return
    head = _locked_head(session, tables)
    seq, previous = _chained(int(head["seq"]), str(head["hash"]), rows)
    for start in range(0, len(rows), _CHUNK):
        session.execute(insert(tables.entry), rows[start : start + _CHUNK])
    session.execute(update(tables.head).where(tables.head.c.id == 1).values(seq=seq, hash=previous))


def _chained(seq: int, previous: str, rows: list[dict[str, Any]]) -> tuple[int, str]:
    """Number and hash ``rows`` after the head (``seq``, ``previous``); the new head."""
    for row in rows:
        seq += 1
        row["seq"], row["prev_hash"] = seq, previous
        row["hash"] = previous = entry_hash(previous, seq, row)
    return seq, previous


_WRITTEN = ("seq", "prev_hash", "hash", *FIELDS)


@cache
def _postgresql_statements(entry: str, head: str) -> tuple[TextClause, TextClause]:
    """The head's lock, and one statement that inserts the entries and moves the head."""
    columns = ", ".join(_WRITTEN)
    lock = text(f"SELECT seq, hash FROM {head} WHERE id = 1 FOR UPDATE")
    write = text(
        f"WITH moved AS (UPDATE {head} SET seq = :seq, hash = :hash WHERE id = 1)"
        f" INSERT INTO {entry} ({columns})"
        f" SELECT {columns} FROM json_populate_recordset(NULL::{entry}, :rows)"
    )
    return lock, write


def _append_postgresql(session: Session, tables: AuditTables, rows: list[dict[str, Any]]) -> None:
    """Append with two statements while the head is locked, where there were three or more.

    The lock reads the head; one statement then inserts the entries (one JSON text, typed by
    the entry table itself) and moves the head. A single post's commit holds the chain's lock
    for one round trip less, and the statements are built once, not per transaction.
    """
    preparer = session.get_bind().dialect.identifier_preparer
    lock, write = _postgresql_statements(
        preparer.format_table(tables.entry), preparer.format_table(tables.head)
    )
    head = session.execute(lock).one()
    seq, previous = _chained(int(head.seq), str(head.hash), rows)
    payload = json.dumps(
        [{name: row[name] for name in _WRITTEN} for row in rows],
        default=_json_time,
        ensure_ascii=False,
    )
    session.execute(write, {"seq": seq, "hash": previous, "rows": payload})


def _json_time(value: object) -> str:
    # an entry's time as PostgreSQL reads it back exactly (microseconds, with its offset)
    if isinstance(value, datetime):  # naive is UTC, as the hash (canonical_time) takes it
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def fields_of(row: RowMapping | Mapping[str, Any]) -> dict[str, Any]:
    """The hashed fields of a stored entry row."""
    return {name: row[name] for name in FIELDS}


@dataclass(frozen=True)
class Verification:
    """The outcome of walking a chain."""

    ok: bool
    entries_checked: int
    first_break: Break | None
    anchor: Link
    head: Link


async def head_of(session: AsyncSession, tables: AuditTables) -> tuple[Link, Link]:
    """The chain's anchor (last purged entry or genesis) and head (last entry written)."""
    row = (await session.execute(select(tables.head).where(tables.head.c.id == 1))).mappings().one()
    return (
        Link(int(row["anchor_seq"]), str(row["anchor_hash"])),
        Link(int(row["seq"]), str(row["hash"])),
    )


async def _entries(
    session: AsyncSession, tables: AuditTables, after: int, until: int | None
) -> AsyncIterator[ChainEntry]:
    entry = tables.entry
    while True:
        query = select(entry).where(entry.c.seq > after).order_by(entry.c.seq).limit(_WALK_BATCH)
        if until is not None:
            query = query.where(entry.c.seq <= until)
        rows = (await session.execute(query)).mappings().all()
        for row in rows:
            yield ChainEntry(int(row["seq"]), row["prev_hash"], row["hash"], fields_of(row))
        if len(rows) < _WALK_BATCH:
            return
        after = int(rows[-1]["seq"])


def parse_link(text: str) -> Link:
    """``SEQ:HASH`` (as :func:`describe_head` prints it) as a :class:`Link`; ValueError if not."""
    seq, _, digest_hex = text.strip().partition(":")
    if not seq.isdigit() or len(digest_hex) != 64 or set(digest_hex) - set("0123456789abcdef"):
        raise ValueError(f"not SEQ:HASH (64 lowercase hex digits): {text!r}")
    return Link(int(seq), digest_hex)


async def _check_anchored(
    session: AsyncSession, tables: AuditTables, anchored: Link, anchor: Link, head: Link
) -> Break | None:
    # An intact chain that still holds a (seq, hash) kept outside the database was not
    # rewritten up to that entry: the remedy for an intruder who recomputes every hash.
    if anchored.seq > head.seq:
        return Break(
            head.seq + 1,
            "removed",
            f"the head is at {head.seq}, behind entry {anchored.seq} anchored outside the database",
        )
    if anchored.seq < anchor.seq:
        return None  # purged since it was anchored: nothing left to compare
    if anchored.seq == anchor.seq:
        stored: str | None = anchor.hash
    else:
        stored = (
            await session.execute(
                select(tables.entry.c.hash).where(tables.entry.c.seq == anchored.seq)
            )
        ).scalar_one_or_none()
    if stored != anchored.hash:
        return Break(
            anchored.seq,
            "altered",
            f"entry {anchored.seq}'s hash is not the one anchored outside the database: the "
            "chain was rewritten at or before it",
        )
    return None


async def verify(
    session: AsyncSession, tables: AuditTables, *, anchored: Link | None = None
) -> Verification:
    """Walk the whole chain from its anchor and compare the end with the head.

    ``anchored`` is a ``(seq, hash)`` kept outside the database earlier (``audit-head``); the
    chain must still hold it.
    """
    anchor, head = await head_of(session, tables)
    walk = ChainWalk(anchor)
    # entries at or below the anchor should have been purged; one that is there was put back
    stray = (
        await session.execute(
            select(func.min(tables.entry.c.seq)).where(tables.entry.c.seq <= anchor.seq)
        )
    ).scalar_one()
    if stray is not None:
        broken: Break | None = Break(
            int(stray), "inserted", f"entry {stray} lies before the purge anchor {anchor.seq}"
        )
    else:
        async for item in _entries(session, tables, anchor.seq, None):
            if walk.feed(item) is not None:
                break
        if walk.broken is None:
            # PostgreSQL reads each statement anew (READ COMMITTED): entries committed since
            # the head was read moved the head with them. The head as it is now covers every
            # entry a writer committed before this read; one the walk saw beyond it was put
            # there behind the head's back, and entries committed after the walk are walked.
            head = (await head_of(session, tables))[1]
            if head.seq > walk.last.seq:
                async for item in _entries(session, tables, walk.last.seq, head.seq):
                    if walk.feed(item) is not None:
                        break
        broken = walk.finish(head)
    if broken is None and anchored is not None:
        broken = await _check_anchored(session, tables, anchored, anchor, head)
    return Verification(broken is None, walk.checked, broken, anchor, head)


class AuditPurgeTooRecent(DomainError):
    """A purge that would remove entries younger than the retention period."""

    type = PROBLEMS + "audit-purge-too-recent"
    status = 422
    title = "Audit entries are too recent to purge"


class AuditChainBroken(Conflict):
    """The chain does not verify, so nothing may be purged from it."""

    type = PROBLEMS + "audit-chain-broken"
    title = "The audit chain does not verify"


@dataclass(frozen=True)
class Purge:
    """What a purge removed and the anchor the chain now starts from."""

    removed: int
    anchor: Link


async def purge(
    session: AsyncSession, tables: AuditTables, *, before: datetime, now: datetime | None = None
) -> Purge:
    """Delete the oldest entries written before ``before``, keeping the chain verifiable.

    Refuses a cut-off within :data:`RETENTION` of ``now`` and a chain that does not verify
    (purging would destroy the evidence). Entries go in ``seq`` order up to the first entry
    written at or after ``before``; the last one removed becomes the anchor. The caller commits.
    """
    now = now or datetime.now(UTC)
    before = (before if before.tzinfo is not None else before.replace(tzinfo=UTC)).astimezone(UTC)
    if before > now - RETENTION:
        latest = (now - RETENTION).date().isoformat()
        raise AuditPurgeTooRecent(
            f"Audit entries must be kept for at least {RETENTION.days} days; the latest "
            f"cut-off allowed today is {latest}, not {before.date().isoformat()}.",
            detail_zh=(
                f"审计日志至少保存 {RETENTION.days} 天；今天最晚只能清理 {latest} 之前的记录。"
            ),
            latest_allowed=latest,
        )
    if session.get_bind().dialect.name == "postgresql":
        # the head lock first: no entry can be appended while the walk and the delete run
        await session.execute(
            select(tables.head.c.id).where(tables.head.c.id == 1).with_for_update()
        )
    checked = await verify(session, tables)
    if not checked.ok:
        assert checked.first_break is not None
        raise AuditChainBroken(
            f"The audit chain does not verify ({checked.first_break.kind} at entry "
            f"{checked.first_break.seq}); nothing was purged.",
            detail_zh="审计链校验未通过，未清理任何记录。",
        )
    entry = tables.entry
    young = (
        await session.execute(select(func.min(entry.c.seq)).where(entry.c.at >= before))
    ).scalar_one()
    last = checked.head.seq if young is None else int(young) - 1
    if last <= checked.anchor.seq:
        return Purge(0, checked.anchor)
    anchor_hash = (
        await session.execute(select(entry.c.hash).where(entry.c.seq == last))
    ).scalar_one()
    head = tables.head.c
    # the append-only trigger lets DELETE through only while the head says a purge is running
    await session.execute(update(tables.head).where(head.id == 1).values(purging=True))
    removed = await session.execute(delete(entry).where(entry.c.seq <= last))
    await session.execute(
        update(tables.head)
        .where(head.id == 1)
        .values(purging=False, anchor_seq=last, anchor_hash=anchor_hash)
    )
    count: int = removed.rowcount  # type: ignore[attr-defined]
    return Purge(count, Link(last, str(anchor_hash)))


def describe(result: Verification) -> str:
    """One line for an operator: whether the chain holds, and where it first does not."""
    span = f"entries {result.anchor.seq + 1}..{result.head.seq}"
    if result.first_break is None:
        return f"audit chain ok: {result.entries_checked} entries checked ({span})"
    found = result.first_break
    return f"audit chain BROKEN: {found.kind} at entry {found.seq}: {found.detail} ({span})"


async def verify_as(
    session: AsyncSession, tables: AuditTables, *, actor: str, anchored: Link | None = None
) -> Verification:
    """:func:`verify`, written to the trail as an ``audit.verify`` by ``actor`` (commands)."""
    result = await verify(session, tables, anchored=anchored)
    stage(
        session,
        tables,
        [
            new_entry(
                actor=actor,
                action="audit.verify",
                target_type="audit_trail",
                target_id="*",
                after={"ok": result.ok, "checked": result.entries_checked},
                reason=describe(result),
                outcome="ok" if result.ok else "broken",
            )
        ],
    )
    return result


async def purge_as(
    session: AsyncSession, tables: AuditTables, *, before: datetime, actor: str
) -> Purge:
    """:func:`purge`, written to the trail as an ``audit.purge`` by ``actor``."""
    done = await purge(session, tables, before=before)
    stage(
        session,
        tables,
        [
            new_entry(
                actor=actor,
                action="audit.purge",
                target_type="audit_trail",
                target_id=str(done.anchor.seq),
                after={"removed": done.removed, "anchor_seq": done.anchor.seq},
                reason=f"entries before {before.isoformat()}",
            )
        ],
    )
    return done


def run_command(
    url: str,
    tables: AuditTables,
    *,
    command: str,
    actor: str,
    before: str | None = None,
    anchored: str | None = None,
) -> tuple[int, str]:
    """``verify-audit``, ``audit-head`` or ``purge-audit`` for a service's CLI.

    Returns the exit code and the message to print.
    """
    import asyncio

    from kernel.db import run_in_transaction

    if command == "audit-head":

        async def read_head(session: AsyncSession) -> Link:
            return (await head_of(session, tables))[1]

        head = asyncio.run(run_in_transaction(url, read_head))
        return 0, f"{head.seq}:{head.hash}"
    if command == "verify-audit":
        try:
            link = parse_link(anchored) if anchored else None
        except ValueError as exc:
            return 2, f"--anchored: {exc}"
        result = asyncio.run(
            run_in_transaction(url, lambda s: verify_as(s, tables, actor=actor, anchored=link))
        )
        return (0 if result.ok else 1), describe(result)
    try:
        cutoff = datetime.fromisoformat(before or "").replace(tzinfo=UTC)
    except ValueError:
        return 2, f"--before must be a date, YYYY-MM-DD; not {before!r}"
    try:
        done = asyncio.run(
            run_in_transaction(url, lambda s: purge_as(s, tables, before=cutoff, actor=actor))
        )
    except (AuditPurgeTooRecent, AuditChainBroken) as exc:
        refusal = new_entry(
            actor=actor,
            action="audit.purge",
            target_type="audit_trail",
            target_id="*",
            reason=exc.detail,
            outcome="refused",
        )

        async def note(session: AsyncSession) -> None:
            stage(session, tables, [refusal])

        try:  # the attempt is on record even though nothing was purged
            asyncio.run(run_in_transaction(url, note))
        except IntegrityError:  # a chain extended behind the head's back takes no entries
            pass
        return 2, f"refused: {exc.detail}"
    return 0, (
        f"purged {done.removed} audit entries; the chain now starts after entry "
        f"{done.anchor.seq} (anchor {done.anchor.hash})"
    )


CLI_COMMANDS = ("verify-audit", "audit-head", "purge-audit")


def add_cli_commands(commands: Any) -> None:
    """Register the audit commands on a service CLI's ``argparse`` subparsers.

    They are ``verify-audit``, ``audit-head`` and ``purge-audit`` (:data:`CLI_COMMANDS`).
    """
    verify = commands.add_parser(
        "verify-audit", help="walk the audit hash chain; exit 1 naming the first broken entry"
    )
    verify.add_argument(
        "--anchored",
        metavar="SEQ:HASH",
        help="a head printed earlier by audit-head and kept elsewhere; the chain must hold it",
    )
    commands.add_parser(
        "audit-head", help="print the audit chain's head as SEQ:HASH, to keep outside the database"
    )
    purge = commands.add_parser(
        "purge-audit", help="delete audit entries older than a date (at least 180 days ago)"
    )
    purge.add_argument("--before", required=True, help="cut-off date, YYYY-MM-DD (UTC)")


def cli_command(service: str, url: str, tables: AuditTables, args: Any) -> tuple[int, str]:
    """Run one of :data:`CLI_COMMANDS` as parsed by :func:`add_cli_commands`.

    Returns the exit code and the line to print (on stderr when the code is not 0): the head
    bare, for scripts that send it elsewhere; anything else prefixed with the service's name.
    """
    import getpass

    code, message = run_command(
        url,
        tables,
        command=args.command,
        before=getattr(args, "before", None),
        anchored=getattr(args, "anchored", None),
        actor=f"cli:{getpass.getuser()}",
    )
    if args.command == "audit-head" and code == 0:
        return code, message
    return code, f"{service}: {message}"
