"""Which status changes a learning record may go through (pure rules, no I/O).

pending -> verified | rejected | voided; verified -> voided. Rejected and voided are final:
nothing is ever deleted, a mistaken rejection is corrected by a new record.
"""

from __future__ import annotations

ALLOWED: dict[str, frozenset[str]] = {
    "pending": frozenset({"verified", "rejected", "voided"}),
    "verified": frozenset({"voided"}),
    "rejected": frozenset(),
    "voided": frozenset(),
}


def may_change(current: str, target: str) -> bool:
    """Whether a record in ``current`` may move to ``target``."""
    return target in ALLOWED.get(current, frozenset())
