"""ISO 7064 MOD 11-2, the check character of ID numbers and learning account numbers.

Pure rules: no I/O. Written as the recursive form; for 17 digits it equals GB 11643's weighted
sum with weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2 (2**(17-i) mod 11) and check
characters "10X98765432"[sum mod 11] (the tests prove the two agree).
"""

from __future__ import annotations


def mod11_2(digits: str) -> str:
    """Return the MOD 11-2 check character (0-9 or X) of a string of ASCII digits."""
    # str.isdigit() alone accepts "４" and "²", which int() reads as 4 and refuses
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("only digits carry a MOD 11-2 check character")
    total = 0
    for digit in digits:
        total = (total + int(digit)) * 2 % 11
    return "0123456789X"[(12 - total) % 11]
