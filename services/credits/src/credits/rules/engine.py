"""The credit rule engine (学分积累与转换办法): records and rule versions in, credits out.

Pure: no I/O, no framework. The ledger calls :func:`entitlements` with *all* of one learner's
records and posts the difference between what it returns and what was posted before, so the
result depends only on the records and the rule versions, never on the order or the batches in
which records arrived (replays and re-splits give the same credits).

How hours become credits, per learner, records taken in canonical order (start, id):

1. Countable: rejected and voided records never count; a pending record counts only when its
   source is not on the version's ``verification_required`` list.
2. Day cap, in minutes, per (category, mode, Beijing day): e.g. at most 240 online minutes a
   day count in one category.
3. Conversion, rounding down to hundredths *cumulatively* per (category, mode, year, version):
   a record earns ``floor(total after * 100 / rate) - floor(total before * 100 / rate)``, so a
   year's stream of short online stretches earns exactly what one long stretch would, and no
   fraction of a hundredth is ever paid.
4. Caps in hundredths per (category, year) and per year, greedy in canonical order.

The caps nest (day within category-year within year). That is deliberate: with nested caps
the credits a learner gets are ``min(year cap, sum over categories of min(category cap, ...))``,
so more learning never gives fewer credits and the order of records cannot change the total.
A cross-category daily cap would break both (see docs/decisions.md).

5. Completion award (a separate clause, outside the caps): attending at least
   ``completion.share_percent`` of the sessions of a course or training class with at least
   ``completion.min_sessions`` sessions earns ``completion.award_hundredths`` once, dated on the
   session that reached the share. The idea of an attendance threshold follows the Korean
   credit bank's 80% attendance requirement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from operator import attrgetter
from typing import NamedTuple

CHINA = timezone(timedelta(hours=8))  # the Muye day and year are Beijing-time ones
COUNTING_STATUSES = frozenset({"pending", "verified"})
MODES = ("offline", "online", "blended")


@dataclass(frozen=True)
class Completion:
    """The completion award clause."""

    share_percent: int
    award_hundredths: int
    min_sessions: int
    kinds: frozenset[str]


@dataclass(frozen=True)
class RuleSet:
    """One published rule version, as the engine reads it.

    Attributes:
        version_id: the rule version's database id, cited by every credit it yields.
        effective_from: first Beijing day the version applies to (inclusive).
        effective_to: first Beijing day it no longer applies to (exclusive), or None.
        minutes_per_credit: learning minutes that make one credit, by mode.
        category_minutes_per_credit: overrides by category, then mode.
        day_minutes_cap: minutes a day that count per (category, mode), by mode.
        category_year_cap_hundredths: default cap per category and year.
        category_year_caps: overrides of that cap by category.
        year_cap_hundredths: cap per year over all categories.
        completion: the completion award clause, or None.
        verification_required: sources whose records count only once verified.
        expiry_years: full calendar years unspent credits stay after the year they were earned.
    """

    version_id: int
    effective_from: date
    effective_to: date | None
    minutes_per_credit: Mapping[str, int]
    category_minutes_per_credit: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    day_minutes_cap: Mapping[str, int] = field(default_factory=dict)
    category_year_cap_hundredths: int | None = None
    category_year_caps: Mapping[str, int] = field(default_factory=dict)
    year_cap_hundredths: int | None = None
    completion: Completion | None = None
    verification_required: frozenset[str] = frozenset()
    expiry_years: int | None = None

    def covers(self, day: date) -> bool:
        """Whether the version applies to records of ``day``."""
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)

    def rate(self, category: str, mode: str) -> int:
        """Minutes per credit for a record of ``category`` and ``mode``."""
        return self.category_minutes_per_credit.get(category, {}).get(
            mode, self.minutes_per_credit[mode]
        )

    def category_cap(self, category: str) -> int | None:
        """The yearly cap of ``category`` in hundredths, if any."""
        return self.category_year_caps.get(category, self.category_year_cap_hundredths)


class RecordFacts(NamedTuple):
    """What the engine needs to know of one learning record.

    A named tuple rather than a frozen dataclass: as immutable, and settlement makes one per
    record of every learner it settles, where a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) cost about 1 us each, five times a tuple's.
    """

    id: int
    started_at: datetime
    minutes: int
    category: str
    mode: str
    source: str
    status: str
    activity_id: str
    activity_kind: str
    session_id: str | None = None


class Credit(NamedTuple):
    """Credits one clause of one rule version grants, and the records behind them.

    ``key`` names the entitlement stably across runs (``hours:<record id>`` or
    ``completion:<activity id>``); the ledger posts the difference per key.
    """

    key: str
    clause: str
    category: str
    earned_on: date
    hundredths: int
    version_id: int
    record_ids: tuple[int, ...]


def local_day(moment: datetime) -> date:
    """The Beijing calendar day of an aware instant."""
    return moment.astimezone(CHINA).date()


def beijing_today(now: datetime | None = None) -> date:
    """Today's date in Beijing (the day of ``now``, when given)."""
    return local_day(now or datetime.now(UTC))


def version_for(versions: Sequence[RuleSet], day: date) -> RuleSet | None:
    """The version that applies to ``day``: of those covering it, the last published.

    ``versions`` come in publication order, so a correction published later wins.
    """
    chosen = None
    for version in versions:
        if version.covers(day):
            chosen = version
    return chosen


def is_countable(record: RecordFacts, version: RuleSet) -> bool:
    """Whether ``record`` earns credits under ``version``."""
    if record.status not in COUNTING_STATUSES:
        return False
    return record.status == "verified" or record.source not in version.verification_required


def entitlements(
    records: Iterable[RecordFacts],
    versions: Sequence[RuleSet],
    session_counts: Mapping[str, int],
) -> list[Credit]:
    """Everything one learner's records are worth under the rule versions.

    Args:
        records: all of the learner's records (any status; the engine decides what counts).
        versions: the published rule versions in publication order.
        session_counts: number of sessions of each activity the records belong to.

    Returns:
        One :class:`Credit` per record that earns something and per completion award, in
        canonical order; zero amounts are left out.
    """
    ordered = sorted(records, key=attrgetter("started_at", "id"))
    day_used: dict[tuple[str, str, date], int] = defaultdict(int)
    stream_minutes: dict[tuple[str, str, int, int], int] = defaultdict(int)
    category_used: dict[tuple[str, int], int] = defaultdict(int)
    year_used: dict[int, int] = defaultdict(int)
    attended: dict[str, dict[str, int]] = defaultdict(dict)  # activity -> session -> record
    awarded: set[str] = set()
    versions_by_day: dict[date, RuleSet | None] = {}
    credits: list[Credit] = []
    # the hot loop of every settlement: plain comparisons, no helper calls per record
    for record in ordered:
        status = record.status
        if status not in COUNTING_STATUSES:
            continue
        day = record.started_at.astimezone(CHINA).date()
        if day in versions_by_day:
            version = versions_by_day[day]
        else:
            version = versions_by_day[day] = version_for(versions, day)
        if version is None or (
            status != "verified" and record.source in version.verification_required
        ):
            continue
        category, mode, year = record.category, record.mode, day.year
        # 2. day cap in minutes per (category, mode, day)
        minutes = record.minutes if record.minutes > 0 else 0
        cap = version.day_minutes_cap.get(mode)
        if cap is not None:
            day_key = (category, mode, day)
            room = cap - day_used[day_key]
            if minutes > room:
                minutes = room if room > 0 else 0
            day_used[day_key] += minutes
        # 3. cumulative rounding down per (category, mode, year, version)
        rate = version.rate(category, mode)
        stream = (category, mode, year, version.version_id)
        total_before = stream_minutes[stream]
        stream_minutes[stream] = total_before + minutes
        amount = (total_before + minutes) * 100 // rate - total_before * 100 // rate
        # 4. nested caps in hundredths
        category_cap = version.category_cap(category)
        if category_cap is not None:
            room = category_cap - category_used[(category, year)]
            if amount > room:
                amount = room if room > 0 else 0
        year_cap = version.year_cap_hundredths
        if year_cap is not None:
            room = year_cap - year_used[year]
            if amount > room:
                amount = room if room > 0 else 0
        if amount > 0:
            category_used[(category, year)] += amount
            year_used[year] += amount
            credits.append(
                Credit(
                    key=f"hours:{record.id}",
                    clause=f"hours.{mode}",
                    category=category,
                    earned_on=day,
                    hundredths=amount,
                    version_id=version.version_id,
                    record_ids=(record.id,),
                )
            )
        # 5. completion award, once per activity
        completion = version.completion
        if (
            completion is None
            or record.session_id is None
            or record.activity_kind not in completion.kinds
            or record.activity_id in awarded
        ):
            continue
        sessions = attended[record.activity_id]
        sessions.setdefault(record.session_id, record.id)
        total = session_counts.get(record.activity_id, 0)
        if (
            total >= completion.min_sessions
            and len(sessions) * 100 >= completion.share_percent * total
        ):
            awarded.add(record.activity_id)
            credits.append(
                Credit(
                    key=f"completion:{record.activity_id}",
                    clause="completion",
                    category=category,
                    earned_on=day,
                    hundredths=completion.award_hundredths,
                    version_id=version.version_id,
                    record_ids=tuple(sorted(sessions.values())),
                )
            )
    return credits


def expiring_hundredths(
    *,
    earned_by_year: Mapping[int, int],
    balance: int,
    expiry_years: int,
    today: date,
) -> int:
    """How much of one account's balance expires today (first earned, first spent).

    Credits earned in year Y may be spent until the end of year ``Y + expiry_years``. Every
    debit (conversions, earlier expiry, take-backs) goes to the oldest credits first, so what
    the account holds is its newest credits: of the balance, at most what was earned after
    the last expired year is still good and the rest expires. Never more than the balance,
    never negative.

    The balance alone says what was spent and what expired before. (Subtracting the
    conversions that stand from the old credits, as this did before, let a conversion whose
    records were voided since, paid for by the write-off, keep as many of the learner's later
    credits from ever expiring.)
    """
    last_expired_year = today.year - expiry_years - 1
    recent = sum(amount for year, amount in earned_by_year.items() if year > last_expired_year)
    return max(0, balance - max(0, recent))
