"""Masking of personal data for display (phones; ID numbers live in :mod:`accounts.idnumber`)."""

from __future__ import annotations

import re
import unicodedata

_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")  # ASCII only: \d also matches "４" or "٤"


class InvalidPhone(ValueError):
    """Not a mainland mobile number."""


def normalise_mobile(value: str) -> str:
    """Return the 11-digit mainland mobile number, dropping spaces, dashes and +86.

    Full-width digits, dashes and plus signs are folded to ASCII first (NFKC), so the number
    typed either way gets the same blind index and signs in the same.
    """
    digits = re.sub(r"[\s-]", "", unicodedata.normalize("NFKC", value))
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MOBILE.match(digits):
        raise InvalidPhone("a mainland mobile number has 11 digits starting 13-19")
    return digits


def mask_mobile(number: str) -> str:
    """Show the first three and last four digits: ``138****1234``."""
    return number[:3] + "****" + number[-4:]
