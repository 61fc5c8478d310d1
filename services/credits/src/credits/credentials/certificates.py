"""Certificate numbers and the masked name a verification page shows.

Pure: no I/O. A certificate number reads ``MY2026-7K3Q-9XT4``: the district's prefix, the year
of issue, seven random Crockford base-32 characters and one check character (Luhn mod 32), so
a mistyped number is refused before any lookup. 35 random bits a year are plenty for a
district; the database's unique key settles the rare collision.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
PREFIX = "MY"
MASKED_NAME_MAX = 40  # IssuedDocument.holder_masked_name
_PATTERN = re.compile(r"^MY(\d{4})-([0-9A-HJKMNP-TV-Z]{4})-([0-9A-HJKMNP-TV-Z]{4})$")


def check_character(payload: str) -> str:
    """The Luhn mod 32 check character of ``payload`` (characters of :data:`ALPHABET`)."""
    factor, total, n = 2, 0, len(ALPHABET)
    for char in reversed(payload):
        addend = factor * ALPHABET.index(char)
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_number(year: int) -> str:
    """A fresh random certificate number for ``year``."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(7))
    body += check_character(body)
    return f"{PREFIX}{year:04d}-{body[:4]}-{body[4:]}"


def normalise(text: str) -> str | None:
    """The canonical form of a typed number (case, spaces, Crockford look-alikes), or None."""
    cleaned = re.sub(r"\s", "", text).upper().translate(str.maketrans("OIL", "011"))
    match = _PATTERN.match(cleaned)
    if match is None:
        return None
    body = match.group(2) + match.group(3)
    if check_character(body[:7]) != body[7]:
        return None
    return cleaned


def mask_name(name: str) -> str:
    """Keep the first and last character: ``李小梅`` -> ``李*梅``, ``王芳`` -> ``王*``; at most
    :data:`MASKED_NAME_MAX` characters (what an issued document keeps), however long the name."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * min(len(name) - 2, MASKED_NAME_MAX - 2) + name[-1]
