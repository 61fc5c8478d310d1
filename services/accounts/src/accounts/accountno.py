"""Learning account numbers (学习账号): stable, printed on transcripts, used to sign in.

Pure rules: no I/O. The number is the 6-digit division code of the district that opened it,
a 7-digit sequence and one ISO 7064 MOD 11-2 check character (0-9 or X), 14 characters in all,
so a mistyped digit or two swapped neighbours is caught before any lookup.
"""

from __future__ import annotations

import re
import unicodedata

from accounts.checkdigits import mod11_2

_SHAPE = re.compile(r"^[0-9]{13}[0-9X]$")  # ASCII only: \d also matches "４" or "٤"
SEQUENCE_DIGITS = 7


class InvalidAccountNumber(ValueError):
    """Not a well-formed learning account number."""


def make(district_code: str, sequence: int) -> str:
    """Build the account number for ``sequence`` within ``district_code``."""
    if len(district_code) != 6 or not (district_code.isascii() and district_code.isdigit()):
        raise InvalidAccountNumber("the district code has 6 digits")
    if not 0 < sequence < 10**SEQUENCE_DIGITS:
        raise InvalidAccountNumber("the sequence is out of range")
    body = f"{district_code}{sequence:0{SEQUENCE_DIGITS}d}"
    return body + mod11_2(body)


def normalise(value: str) -> str:
    """The number as stored: full-width characters folded to ASCII (NFKC), trimmed, upper case."""
    return unicodedata.normalize("NFKC", value).strip().upper()


def is_valid(value: str) -> bool:
    """Whether ``value`` (once normalised) is a well-formed number with a matching check
    character."""
    number = normalise(value)
    return bool(_SHAPE.match(number)) and mod11_2(number[:13]) == number[13]
