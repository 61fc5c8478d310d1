"""Which category accounts a conversion (学分转换) takes its credits from. Pure.

A conversion target asks, per unit converted, for amounts of credits from sets of categories
(``None``: any category). :func:`allocate` decides the debits deterministically: the most
specific requirement is served first (fewest categories), each from the largest balance first,
ties by category code, so the same balances and request always give the same debits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    """``hundredths`` credits from any of ``categories`` (None: from any category)."""

    hundredths: int
    categories: frozenset[str] | None = None


class Insufficient(Exception):
    """The balances cannot cover the requirements; ``short`` says by how much."""

    def __init__(self, requirement: Requirement, short: int) -> None:
        super().__init__(f"short by {short} hundredths")
        self.requirement = requirement
        self.short = short


def allocate(
    balances: Mapping[str, int], requirements: Sequence[Requirement], units: int = 1
) -> dict[str, int]:
    """Debits by category that meet ``requirements`` ``units`` times, or raise Insufficient.

    Args:
        balances: the learner's balance per category, in hundredths.
        requirements: what one unit of the target needs.
        units: how many units are converted.

    Returns:
        Hundredths to debit per category (only positive amounts).
    """
    left = {category: amount for category, amount in balances.items() if amount > 0}
    debits: dict[str, int] = {}

    def specificity(requirement: Requirement) -> tuple[int, int]:
        size = len(requirement.categories) if requirement.categories is not None else 10**6
        return size, -requirement.hundredths

    for requirement in sorted(requirements, key=specificity):
        need = requirement.hundredths * units
        allowed = [
            category
            for category in left
            if requirement.categories is None or category in requirement.categories
        ]
        for category in sorted(allowed, key=lambda c: (-left[c], c)):
            if need == 0:
                break
            take = min(need, left[category])
            if take > 0:
                left[category] -= take
                debits[category] = debits.get(category, 0) + take
                need -= take
        if need > 0:
            raise Insufficient(requirement, need)
    return debits
