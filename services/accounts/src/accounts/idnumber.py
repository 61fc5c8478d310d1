"""Citizen ID numbers (公民身份号码) under GB 11643-1999: checks and what the number tells.

Pure rules: no I/O. The number is 18 characters: a 6-digit region code, an 8-digit birth date,
a 3-digit sequence (odd for men, even for women) and an ISO 7064 MOD 11-2 check character.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from accounts.checkdigits import mod11_2

_SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")  # ASCII only: \d also matches "４" or "٤"
EARLIEST_BIRTH = date(1900, 1, 1)


class InvalidIdNumber(ValueError):
    """The value is not a valid citizen ID number; ``reason`` says which rule failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_character(first17: str) -> str:
    """Return the GB 11643 check character for 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise InvalidIdNumber("the first 17 characters must be digits")
    return mod11_2(first17)


@dataclass(frozen=True)
class CitizenId:
    """A checked ID number and what it encodes."""

    number: str
    region_code: str
    birth_date: date
    gender: str  # "male" or "female", from the parity of the sequence digit

    def age_on(self, day: date) -> int:
        """Whole years of age on ``day``."""
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years


def normalise(value: str) -> str:
    """Fold full-width characters to ASCII (NFKC), strip spaces and upper-case a trailing x.

    A number typed with a Chinese input method ("４１０７１１…", "ｘ") is the same number as its
    ASCII form and must meet the same duplicate check; digits NFKC leaves alone (Arabic-Indic,
    Devanagari) are then refused by the shape check.
    """
    return unicodedata.normalize("NFKC", value).strip().replace(" ", "").upper()


def parse(value: str, *, today: date | None = None) -> CitizenId:
    """Check ``value`` and return what it encodes, or raise :class:`InvalidIdNumber`."""
    number = normalise(value)
    if len(number) != 18:
        raise InvalidIdNumber("an ID number has 18 characters")
    if not _SHAPE.match(number):
        raise InvalidIdNumber("17 digits then a digit or X")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber("the birth date is not a real date") from None
    if born < EARLIEST_BIRTH or born > (today or date.today()):
        raise InvalidIdNumber("the birth date is out of range")
    if check_character(number[:17]) != number[17]:
        raise InvalidIdNumber("the check character does not match")
    return CitizenId(
        number=number,
        region_code=number[:6],
        birth_date=born,
        gender="male" if int(number[16]) % 2 else "female",
    )


def mask(number: str) -> str:
    """Show the region code and the last two characters only: ``410711**********1X``."""
    return number[:6] + "*" * (len(number) - 8) + number[-2:]
