"""Text a person typed, as request bodies take it: no control or format characters.

PostgreSQL's text cannot hold NUL at all (a NUL in one field was a 500, and in a partner batch
it lost the good records with it); the other control characters (a bell, an escape) and the
format ones (a zero-width space, a right-to-left override) make two names that print alike
differ, or a printed name read backwards. So they are refused where the text comes in, with a
422 that names the field and the character, on both databases alike.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator

__all__ = [
    "CONTROL_FREE",
    "PlainText",
    "ReasonText",
    "account_number",
    "control_character",
    "refuse_control",
    "without_control",
]

#: the same rule as a pattern, checked in pydantic's core (for the partner batch's hot path,
#: where a Python validator per item costs more than the item's other checks)
CONTROL_FREE = r"^[^\p{Cc}\p{Cf}]*$"


def control_character(value: str, *, allowed: str = "") -> str | None:
    """The first control or format character in ``value`` not in ``allowed``, or None."""
    return next(
        (c for c in value if c not in allowed and unicodedata.category(c) in ("Cc", "Cf")), None
    )


def without_control(value: str) -> str:
    """``value`` with its control and format characters dropped.

    For text that is shown but may not be refused (an uploaded file's own name): no NUL, no
    line breaks, no direction override that makes ``证书\u202efdp.exe`` look like
    ``证书exe.pdf``.
    """
    return "".join(c for c in value if unicodedata.category(c) not in ("Cc", "Cf"))


def account_number(value: str) -> str:
    """A learning account number as the accounts service stores it.

    Full-width digits and letters are folded to ASCII (NFKC: "４１０７…" typed with a Chinese
    input method), spaces dropped (an ideographic space too), the check character upper case.
    """
    if not value.isascii():
        value = unicodedata.normalize("NFKC", value)
    return "".join(value.split()).upper()


def refuse_control(value: str, allowed: str = "") -> str:
    """``value``, or a ValueError naming its first control or format character."""
    found = control_character(value, allowed=allowed)
    if found is not None:
        raise ValueError(f"control character U+{ord(found):04X} is not allowed")
    return value


# names, titles, codes: one printable line; reasons and notes may run over lines
PlainText = Annotated[str, AfterValidator(refuse_control)]
ReasonText = Annotated[str, AfterValidator(lambda value: refuse_control(value, "\n\r\t"))]
