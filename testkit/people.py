"""Test data for people: valid ID numbers built from Muye's division codes."""

from __future__ import annotations

import itertools
from datetime import date

from accounts.idnumber import check_character

_sequence = itertools.count(101)


def id_number(
    born: date = date(1962, 5, 1), region: str = "410711", sequence: int | None = None
) -> str:
    """A valid GB 11643 number for someone registered in ``region``, born ``born``."""
    seq = next(_sequence) % 1000 if sequence is None else sequence
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + check_character(first17)


_phones = itertools.count(13800000001)


def phone() -> str:
    """A distinct mainland mobile number."""
    return str(next(_phones))
