"""The incentive scale for volunteers and part-time teachers (志愿者、兼职教师). Pure.

Seed 001 (shared/seeds/001_*.txt): +1 point per lecture given, +0.1 point per activity joined,
capped at 5% of the unit's assessment total. Points are kept in hundredths, in a point account
of their own, never mixed with learning credits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PointScale:
    """The scale as the rule version states it."""

    per_lecture_hundredths: int = 100
    per_activity_hundredths: int = 10
    cap_percent_of_assessment: int = 5


def points_hundredths(
    *, lectures: int, activities: int, assessment_total_hundredths: int, scale: PointScale
) -> int:
    """Points earned in one assessment period, capped at a share of the unit's total.

    The cap rounds down to a hundredth: 5% of 37.35 points is 1.86, not 1.8675.
    """
    earned = lectures * scale.per_lecture_hundredths + activities * scale.per_activity_hundredths
    cap = assessment_total_hundredths * scale.cap_percent_of_assessment // 100
    return max(0, min(earned, cap))
