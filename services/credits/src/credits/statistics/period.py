"""Report periods: inclusive Beijing calendar days turned into UTC instants (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
# the days a report may cover (the learning stars' years): beyond them no instant exists for
# day 1 (0001-01-01 Beijing is in year 0 UTC) or for the day after 9999-12-31
EARLIEST = date(2000, 1, 1)
LATEST = date(2100, 12, 31)


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
