r"""The audit trail's hash chain: canonical entries, their hashes, and a walk that finds breaks.

Pure: data in, data out; no database. Each service keeps its own chain (docs/decisions.md,
"Audit trail: one hash chain per service").

An entry's hash covers its sequence number, its fields and the hash of the entry before it::

    hash(n) = SHA-256(hash(n-1) || "\n" || canonical_json({"seq": n, **fields}))

The first entry's predecessor is :data:`GENESIS`; after a purge the last purged entry's
``(seq, hash)`` is kept as the anchor the remaining chain starts from. A separately kept head
(last ``seq`` and ``hash``) lets the walk notice entries removed from, or added to, the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

GENESIS = "0" * 64
"""The predecessor hash of the first entry ever written."""

FIELDS = (
    "at",
    "actor",
    "actor_kind",
    "actor_role",
    "actor_unit",
    "action",
    "target_type",
    "target_id",
    "before_digest",
    "after_digest",
    "reason",
    "request_id",
    "outcome",
)
"""The entry fields the hash covers, besides ``seq`` and the previous hash."""

BreakKind = Literal["altered", "removed", "inserted"]


def canonical_time(value: datetime) -> str:
    """A timestamp as UTC ISO 8601 with microseconds; naive values are taken as UTC.

    SQLite hands timestamps back without their zone, PostgreSQL with it; both mean UTC here.
    """
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds")


def canonical(seq: int, fields: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers: ``seq`` and :data:`FIELDS` as sorted, compact JSON."""
    content: dict[str, Any] = {"seq": seq}
    for name in FIELDS:
        value = fields.get(name)
        content[name] = canonical_time(value) if isinstance(value, datetime) else value
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(previous_hash: str, seq: int, fields: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of an entry chained to ``previous_hash``."""
    digest = hashlib.sha256(previous_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical(seq, fields))
    return digest.hexdigest()


@dataclass(frozen=True)
class Link:
    """A position in the chain: a sequence number and the hash of the entry there."""

    seq: int
    hash: str


START = Link(seq=0, hash=GENESIS)
"""The anchor of a chain nothing has been purged from."""


@dataclass(frozen=True)
class ChainEntry:
    """One stored entry as the walk sees it."""

    seq: int
    prev_hash: str
    hash: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Break:
    """The first place the chain does not hold.

    Attributes:
        seq: the sequence number of the first entry altered, inserted or missing.
        kind: ``altered`` (an entry's content no longer matches its hash), ``removed``
            (entries are missing before ``seq``'s successor, or at the end) or ``inserted``
            (an entry that the chain does not lead to).
        detail: what was expected and found, in English.
    """

    seq: int
    kind: BreakKind
    detail: str


class ChainWalk:
    """Walk a chain entry by entry (so a caller can stream it in batches).

    Feed entries in ascending ``seq`` order with :meth:`feed`; the first break found is kept
    and later entries are ignored. :meth:`finish` compares the end with the head.
    """

    def __init__(self, anchor: Link = START) -> None:
        """Start after ``anchor`` (the genesis or the last purged entry)."""
        self.last = anchor
        self.checked = 0
        self.broken: Break | None = None

    def feed(self, entry: ChainEntry) -> Break | None:
        """Check one entry against its own content and the entry before it."""
        if self.broken is not None:
            return self.broken
        self.checked += 1
        expected = self.last.seq + 1
        if entry_hash(entry.prev_hash, entry.seq, entry.fields) != entry.hash:
            self.broken = self._unhashed(entry, expected)
        elif entry.seq > expected:
            self.broken = Break(
                expected,
                "removed",
                f"entries {expected}..{entry.seq - 1} are missing before entry {entry.seq}",
            )
        elif entry.seq < expected or entry.prev_hash != self.last.hash:
            self.broken = Break(
                entry.seq,
                "inserted",
                f"entry {entry.seq} does not follow entry {self.last.seq} "
                "(its previous hash is not that entry's hash)",
            )
        self.last = Link(entry.seq, entry.hash)
        return self.broken

    def _unhashed(self, entry: ChainEntry, expected: int) -> Break:
        # An entry whose hash does not match: edited in place, unless it is intact but was
        # renumbered to make room for a forged entry (it hashes at seq - 1) or to close the gap
        # a removed one left (it hashes at seq + 1).
        if entry_hash(entry.prev_hash, entry.seq - 1, entry.fields) == entry.hash:
            return Break(
                entry.seq - 1,
                "inserted",
                f"entry {entry.seq - 1} was inserted: the entry after it was moved up from "
                f"{entry.seq - 1} to {entry.seq}",
            )
        if entry_hash(entry.prev_hash, entry.seq + 1, entry.fields) == entry.hash:
            return Break(
                entry.seq,
                "removed",
                f"an entry was removed before entry {entry.seq + 1}, which was renumbered "
                f"{entry.seq}",
            )
        return Break(
            entry.seq,
            "altered",
            f"entry {entry.seq}'s content does not match its hash"
            + ("" if entry.seq == expected else f" (expected entry {expected} here)"),
        )

    def finish(self, head: Link | None) -> Break | None:
        """Compare the last entry with the separately kept head (``None``: no head kept)."""
        if self.broken is not None or head is None:
            return self.broken
        if self.last.seq < head.seq:
            self.broken = Break(
                self.last.seq + 1,
                "removed",
                f"the head records entry {head.seq}; the chain ends at {self.last.seq}",
            )
        elif self.last.seq > head.seq:
            self.broken = Break(
                head.seq + 1,
                "inserted",
                f"the head records entry {head.seq}; the chain goes on to {self.last.seq}",
            )
        elif self.last.hash != head.hash:
            self.broken = Break(
                self.last.seq, "altered", f"entry {self.last.seq}'s hash differs from the head's"
            )
        return self.broken


def verify_chain(
    entries: Iterable[ChainEntry], *, anchor: Link = START, head: Link | None = None
) -> Break | None:
    """The first break in ``entries`` (ascending ``seq``) after ``anchor``, or ``None``."""
    walk = ChainWalk(anchor)
    for entry in entries:
        if walk.feed(entry) is not None:
            return walk.broken
    return walk.finish(head)
