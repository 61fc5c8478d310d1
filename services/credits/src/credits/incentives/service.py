"""Volunteer points (志愿服务积分): seed 001's scale, capped by the unit's assessment total,
kept in a point account of their own and settled like credits (the difference is posted)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import case, extract, func, text
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from credits.activities.models import Activity, ActivitySession
from credits.incentives.models import UnitAssessment, VolunteerService
from credits.incentives.schemas import PointsPublic, ServiceCreate
from credits.ledger import service as ledger
from credits.ledger.models import CreditSource
from credits.ledger.service import Draft, Leg, Source
from credits.ledger.settlement import POINTS_CLAUSE
from credits.rules import engine, incentives
from credits.rules import service as rules
from credits.rules.incentives import PointScale
from credits.rules.models import RuleVersion
from credits.rules.schemas import point_scale
from kernel.access import WRITING_STAFF, covers
from kernel.clock import aware_utc
from kernel.problems import PROBLEMS, Conflict, DomainError, NotFound
from kernel.tokens import Principal


class ServiceRefused(DomainError):
    """The service entry names something that does not fit."""

    type = PROBLEMS + "volunteer-service-refused"
    status = 422
    title = "Volunteer service refused"


class AlreadyRecorded(Conflict):
    """This service was entered before."""

    type = PROBLEMS + "volunteer-service-recorded"
    title = "Already recorded"


# the years a unit's assessment total may be set for (the route's bounds), so points can count
FIRST_YEAR, LAST_YEAR = 2000, 2100


# PostgreSQL advisory lock (POINTS_LOCK_CLASS, hashtext("points:<year>:<unit>")) of a unit's
# volunteer points of a year: exclusive while its assessment total is set, shared while a
# volunteer's points of it are counted (settle_points), so neither settles against what the
# other has not committed yet. The other classes: 7411 ingestion's learner buckets, 7412
# statistics reports, 7413 the rule versions (credits.ledger.RULES_LOCK), 7414 certification
# submissions. Order: the rule versions' lock (shared), then this, then learners' locks.
POINTS_LOCK_CLASS = 7415
_POINTS_LOCK_SHARED = text("SELECT pg_advisory_xact_lock_shared(:lock_class, hashtext(:slot))")
_POINTS_LOCK_EXCLUSIVE = text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(:slot))")


def _key(year: int, unit: str) -> str:
    return f"points:{year}:{unit}"


async def record_service(
    *, session: AsyncSession, principal: Principal, learner_id: uuid.UUID, data: ServiceCreate
) -> tuple[VolunteerService, PointsPublic]:
    """Keep one lecture or activity of a volunteer and settle the points it changes."""
    activity = await session.get(Activity, data.activity)
    if activity is None or not covers(principal, activity.host_unit_path, roles=WRITING_STAFF):
        raise NotFound(
            f"No activity {data.activity} that you may record service for.",
            detail_zh="找不到该活动，或无权为其登记志愿服务。",
        )
    served_on = data.served_on
    if data.session is not None:
        meeting = await session.get(ActivitySession, data.session)
        if meeting is None or meeting.activity_id != activity.id:
            raise ServiceRefused(
                "The session is not one of this activity's.", detail_zh="场次不属于该活动。"
            )
        served_on = served_on or engine.local_day(aware_utc(meeting.starts_at))
    if served_on is None:
        raise ServiceRefused(
            "Give the day served (served_on) or the session.", detail_zh="请填写服务日期或场次。"
        )
    if not FIRST_YEAR <= served_on.year <= LAST_YEAR:
        raise ServiceRefused(
            f"The day served must fall in {FIRST_YEAR} to {LAST_YEAR}, the years units are"
            " assessed in.",
            detail_zh=f"服务日期须在 {FIRST_YEAR} 至 {LAST_YEAR} 年之间。",
        )
    occasion = f"session:{data.session}" if data.session else f"activity:{activity.id}"
    entry = VolunteerService(
        learner_id=learner_id,
        kind=data.kind,
        unit=activity.host_unit,
        unit_path=activity.host_unit_path,
        activity_id=activity.id,
        session_id=data.session,
        occasion=occasion,
        served_on=served_on,
        minutes=data.minutes,
        recorded_by=principal.subject,
    )
    try:
        async with session.begin_nested():
            session.add(entry)
            await session.flush()
    except IntegrityError:
        raise AlreadyRecorded(
            "This lecture or activity of this volunteer is recorded already.",
            detail_zh="该志愿服务已登记，不能重复登记。",
        ) from None
    points = await settle_points(
        session,
        learner_id=learner_id,
        year=served_on.year,
        unit=activity.host_unit,
        actor=principal.subject,
    )
    return entry, points


@dataclass(frozen=True)
class Scales:
    """The volunteer scale that counts for a year: that of the last published version covering
    the year's last day (the assessment's), as :func:`points_of` has always read it."""

    versions: tuple[tuple[engine.RuleSet, PointScale | None], ...]

    @classmethod
    def of(cls, versions: Sequence[RuleVersion]) -> Scales:
        """``versions`` in publication order (a draft last, for a dry run)."""
        return cls(tuple((rules.as_ruleset(v), point_scale(v.body)) for v in versions))

    def for_year(self, year: int) -> tuple[int | None, PointScale | None]:
        """The version that applies to the year's points (its id) and its scale, if any."""
        day = date(year, 12, 31)
        for ruleset, scale in reversed(self.versions):
            if ruleset.covers(day):
                return ruleset.version_id, scale
        return None, None


async def published_scales(session: AsyncSession) -> Scales:
    """The scales of the published versions."""
    return Scales.of(await rules.published(session))


def _figure(
    *,
    learner_id: uuid.UUID,
    unit: str,
    year: int,
    lectures: int,
    activities: int,
    assessment: int | None,
    scales: Scales,
) -> tuple[PointsPublic, int | None]:
    """What the scale gives for the counts and the cap, and the rule version used. Pure."""
    version_id, scale = scales.for_year(year)
    note, expected = None, 0
    if scale is None:
        note = "no rule version with a volunteer scale covers this year"
    elif assessment is None:
        note = "points wait for the unit's assessment total of the year (the cap)"
    else:
        expected = incentives.points_hundredths(
            lectures=lectures,
            activities=activities,
            assessment_total_hundredths=assessment,
            scale=scale,
        )
    points = PointsPublic(
        learner_id=learner_id,
        unit=unit,
        year=year,
        lectures=lectures,
        activities=activities,
        assessment_total_hundredths=assessment,
        points_hundredths=expected,
        note=note,
    )
    return points, version_id


async def _points(
    session: AsyncSession,
    *,
    learner_id: uuid.UUID,
    year: int,
    unit: str,
    scales: Scales | None = None,
) -> tuple[PointsPublic, int | None]:
    """What the scale gives the volunteer for the unit and year, and the rule version used."""
    counts = dict(
        (
            await session.execute(
                select(col(VolunteerService.kind), func.count())
                .where(
                    col(VolunteerService.learner_id) == learner_id,
                    col(VolunteerService.unit) == unit,
                    col(VolunteerService.served_on) >= date(year, 1, 1),
                    col(VolunteerService.served_on) < date(year + 1, 1, 1),
                )
                .group_by(col(VolunteerService.kind))
            )
        ).all()
    )
    # the column, not the entity: set_assessment upserts in SQL, which an entity already in
    # the session's identity map would not show
    assessment = (
        await session.execute(
            select(col(UnitAssessment.total_hundredths)).where(
                col(UnitAssessment.unit) == unit, col(UnitAssessment.year) == year
            )
        )
    ).scalar_one_or_none()
    return _figure(
        learner_id=learner_id,
        unit=unit,
        year=year,
        lectures=int(counts.get("lecture", 0)),
        activities=int(counts.get("activity", 0)),
        assessment=None if assessment is None else int(assessment),
        scales=scales if scales is not None else await published_scales(session),
    )


async def points_of(
    session: AsyncSession, *, learner_id: uuid.UUID, year: int, unit: str
) -> PointsPublic:
    """The volunteer's points for the unit and year (read only)."""
    return (await _points(session, learner_id=learner_id, year=year, unit=unit))[0]


async def lock_points(session: AsyncSession, *, unit: str, year: int, exclusive: bool) -> None:
    """Hold the lock of a unit's points of a year to this transaction's end (PostgreSQL; SQLite
    has one writer at a time already): exclusive to set the assessment total, shared to count
    a volunteer's points. The rule versions' lock (shared) is taken first: see
    :data:`POINTS_LOCK_CLASS`."""
    if session.get_bind().dialect.name != "postgresql":
        return
    await ledger.lock_rules(session)
    await session.execute(
        _POINTS_LOCK_EXCLUSIVE if exclusive else _POINTS_LOCK_SHARED,
        {"lock_class": POINTS_LOCK_CLASS, "slot": _key(year, unit)},
    )


async def _granted(session: AsyncSession, *, learner_id: uuid.UUID, key: str) -> int:
    return int(
        (
            await session.execute(
                select(func.coalesce(func.sum(col(CreditSource.amount_hundredths)), 0)).where(
                    col(CreditSource.learner_id) == learner_id, col(CreditSource.key) == key
                )
            )
        ).scalar_one()
    )


async def settle_points(
    session: AsyncSession,
    *,
    learner_id: uuid.UUID,
    year: int,
    unit: str,
    actor: str,
    scales: Scales | None = None,
    cause_version_id: int | None = None,
    memo: str | None = None,
) -> PointsPublic:
    """Post the difference between the points the scale gives and those granted so far.

    ``scales`` saves reading the published versions again (a publication settling many
    volunteers); ``cause_version_id`` is the rule version a correction cites.
    """
    return (
        await _settle(
            session,
            learner_id=learner_id,
            year=year,
            unit=unit,
            actor=actor,
            scales=scales,
            cause_version_id=cause_version_id,
            memo=memo,
        )
    )[0]


async def _settle(
    session: AsyncSession,
    *,
    learner_id: uuid.UUID,
    year: int,
    unit: str,
    actor: str,
    scales: Scales | None,
    cause_version_id: int | None,
    memo: str | None,
) -> tuple[PointsPublic, int]:
    """Settle one volunteer's points of a unit and year; the points and what was granted
    before."""
    # the unit's points of the year before the learner (rules, points, learners): an
    # assessment total being set is committed, with its own settlement, before this counts
    await lock_points(session, unit=unit, year=year, exclusive=False)
    await ledger.lock_learners(session, [learner_id])
    points, version_id = await _points(
        session, learner_id=learner_id, year=year, unit=unit, scales=scales
    )
    key = _key(year, unit)
    granted = await _granted(session, learner_id=learner_id, key=key)
    delta = points.points_hundredths - granted
    if delta:
        account = (await ledger.ensure_accounts(session, [(learner_id, "")], kind="points"))[
            (learner_id, "")
        ]
        issuer = await ledger.system_account(session, "points_issuing")
        side, other = ("credit", "debit") if delta > 0 else ("debit", "credit")
        await ledger.write(
            session,
            [
                Draft(
                    kind="points",
                    learner_id=learner_id,
                    created_by=actor,
                    legs=[Leg(account, side, abs(delta)), Leg(issuer, other, abs(delta))],
                    sources=[
                        Source(
                            key=key,
                            clause=POINTS_CLAUSE,
                            category="points",
                            earned_on=date(year, 12, 31),
                            amount=delta,
                            rule_version_id=version_id,
                        )
                    ],
                    rule_version_id=cause_version_id,
                    reference=f"points:{unit}:{year}",
                    memo=memo or f"{points.lectures} lectures, {points.activities} activities",
                )
            ],
        )
    return points, granted


def _upsert(session: AsyncSession) -> Any:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    return insert(UnitAssessment)


async def set_assessment(
    *, session: AsyncSession, unit: str, year: int, total: int, actor: str
) -> tuple[list[PointsPublic], int | None]:
    """Set a unit's assessment total and settle every volunteer of that unit and year; give
    back their points and the total it replaced (None when it is the first).

    The unit's points lock is held exclusively from before the total is written to the
    commit, so service entered meanwhile is counted against the new total by its own
    settlement (which waits for the lock), and two first totals at once take turns.
    """
    await lock_points(session, unit=unit, year=year, exclusive=True)
    previous = (
        await session.execute(
            select(col(UnitAssessment.total_hundredths)).where(
                col(UnitAssessment.unit) == unit, col(UnitAssessment.year) == year
            )
        )
    ).scalar_one_or_none()
    # one statement whether or not a total was set before (an upsert: where the lock does
    # not serialise, as on a connection outside it, the unique (unit, year) still holds)
    now = datetime.now(UTC)
    upsert = _upsert(session).values(
        unit=unit, year=year, total_hundredths=total, set_by=actor, set_at=now
    )
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=["unit", "year"],
            set_={"total_hundredths": total, "set_by": actor, "set_at": now},
        )
    )
    volunteers = (
        await session.execute(
            select(col(VolunteerService.learner_id))
            .where(
                col(VolunteerService.unit) == unit,
                col(VolunteerService.served_on) >= date(year, 1, 1),
                col(VolunteerService.served_on) < date(year + 1, 1, 1),
            )
            .group_by(col(VolunteerService.learner_id))
            .order_by(col(VolunteerService.learner_id))
        )
    ).scalars()
    scales = await published_scales(session)
    settled = [
        await settle_points(session, learner_id=v, year=year, unit=unit, actor=actor, scales=scales)
        for v in list(volunteers)
    ]
    return settled, previous


# -- every volunteer at once: a rule publication and the reconciliation


Slot = tuple[uuid.UUID, str, int]  # (learner, unit, year)


@dataclass(frozen=True)
class PointsDifference:
    """One volunteer's points of a unit and year: granted, and what the rules give."""

    learner_id: uuid.UUID
    unit: str
    year: int
    granted: int
    entitled: int

    @property
    def delta(self) -> int:
        """What settling would post."""
        return self.entitled - self.granted


def years_of(version: RuleVersion) -> range:
    """The years whose points a version can change: those whose last day it covers (the day
    :class:`Scales` reads), within the years units are assessed in."""
    first = max(version.effective_from.year, FIRST_YEAR)
    # the last day of year y is before effective_to exactly when y < effective_to's year
    last = LAST_YEAR if version.effective_to is None else version.effective_to.year - 1
    return range(first, min(last, LAST_YEAR) + 1)


async def _entitled(
    session: AsyncSession, *, learners: Sequence[uuid.UUID] | None, years: range | None
) -> dict[Slot, tuple[int, int]]:
    """Lectures and activities of every (learner, unit, year) with service, in one query."""
    year = extract("year", col(VolunteerService.served_on))
    query = sql_select(
        col(VolunteerService.learner_id),
        col(VolunteerService.unit),
        year,
        func.count(),
        func.sum(case((col(VolunteerService.kind) == "lecture", 1), else_=0)),
    )
    if learners is not None:
        query = query.where(ledger.one_of(session, col(VolunteerService.learner_id), learners))
    if years is not None:
        query = query.where(
            col(VolunteerService.served_on) >= date(years.start, 1, 1),
            col(VolunteerService.served_on) < date(years.stop, 1, 1),
        )
    rows = await session.execute(
        query.group_by(col(VolunteerService.learner_id), col(VolunteerService.unit), year)
    )
    found: dict[Slot, tuple[int, int]] = {}
    for learner, unit, served_in, entries, lectures in rows.all():
        found[(learner, unit, int(served_in))] = (int(lectures), int(entries) - int(lectures))
    return found


async def _granted_slots(
    session: AsyncSession, *, learners: Sequence[uuid.UUID] | None
) -> dict[Slot, int]:
    """The points granted so far per (learner, unit, year), from the provenance lines."""
    query = sql_select(
        col(CreditSource.learner_id),
        col(CreditSource.key),
        func.sum(col(CreditSource.amount_hundredths)),
    ).where(col(CreditSource.clause) == POINTS_CLAUSE)
    if learners is not None:
        query = query.where(ledger.one_of(session, col(CreditSource.learner_id), learners))
    rows = await session.execute(
        query.group_by(col(CreditSource.learner_id), col(CreditSource.key))
    )
    found: dict[Slot, int] = {}
    for learner, key, total in rows.all():
        _, year, unit = str(key).split(":", 2)  # points:<year>:<unit>
        found[(learner, unit, int(year))] = int(total)
    return found


async def differences(
    session: AsyncSession,
    *,
    learners: Sequence[uuid.UUID] | None = None,
    years: range | None = None,
    scales: Scales | None = None,
) -> list[PointsDifference]:
    """Every volunteer's points whose grant is not what the service, the units' assessment
    totals and ``scales`` (default: the published versions) give, in (learner, unit, year)
    order. Reads only, a few queries however many volunteers (a publication's dry run, the
    reconciliation)."""
    scales = scales if scales is not None else await published_scales(session)
    served = await _entitled(session, learners=learners, years=years)
    granted = await _granted_slots(session, learners=learners)
    if years is not None:
        granted = {slot: g for slot, g in granted.items() if slot[2] in years}
    assessed = sql_select(
        col(UnitAssessment.unit), col(UnitAssessment.year), col(UnitAssessment.total_hundredths)
    )
    if years is not None:
        assessed = assessed.where(
            col(UnitAssessment.year) >= years.start, col(UnitAssessment.year) < years.stop
        )
    totals = {
        (unit, year): int(total) for unit, year, total in (await session.execute(assessed)).all()
    }
    found = []
    for slot in sorted(served.keys() | granted.keys(), key=lambda s: (s[0], s[1], s[2])):
        learner, unit, year = slot
        lectures, activities = served.get(slot, (0, 0))
        points, _ = _figure(
            learner_id=learner,
            unit=unit,
            year=year,
            lectures=lectures,
            activities=activities,
            assessment=totals.get((unit, year)),
            scales=scales,
        )
        if points.points_hundredths != granted.get(slot, 0):
            found.append(
                PointsDifference(
                    learner, unit, year, granted.get(slot, 0), points.points_hundredths
                )
            )
    return found


async def resettle_for(
    session: AsyncSession,
    version: RuleVersion,
    *,
    write: bool,
    actor: str,
    memo: str,
    drafted: bool = False,
) -> list[PointsDifference]:
    """The points a rule version changes, settled (``write``) or listed: every volunteer's of
    a year whose last day the version covers. ``drafted``: the version is a draft, counted as
    published after the others (a dry run)."""
    years = years_of(version)
    if not years:
        return []
    stored = await rules.published(session)
    scales = Scales.of([*stored, version] if drafted else stored)
    found = await differences(session, years=years, scales=scales)
    if write:
        assert version.id is not None
        for change in found:  # in learner order, as every learner lock is taken
            await settle_points(
                session,
                learner_id=change.learner_id,
                year=change.year,
                unit=change.unit,
                actor=actor,
                scales=scales,
                cause_version_id=version.id,
                memo=memo,
            )
    return found
