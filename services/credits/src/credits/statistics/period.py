"""Report periods: inclusive Beijing calendar days turned into UTC instants (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Period:
    """``first`` to ``last``, both Beijing days included."""

    first: date
    last: date

    @property
    def starts_at(self) -> datetime:
        """00:00 Beijing time on the first day, as a UTC instant."""
        return datetime.combine(self.first, time(), CHINA).astimezone(UTC)

    @property
    def ends_before(self) -> datetime:
        """00:00 Beijing time on the day after the last, as a UTC instant (excluded)."""
        return datetime.combine(self.last + timedelta(days=1), time(), CHINA).astimezone(UTC)

    @property
    def years(self) -> list[int]:
        """The calendar years the period touches."""
        return list(range(self.first.year, self.last.year + 1))


def beijing_today(now: datetime | None = None) -> date:
    """Today's date in Beijing."""
    return (now or datetime.now(UTC)).astimezone(CHINA).date()
